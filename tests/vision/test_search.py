"""Enrolment and search round trip on real photos, and the on-device head's calibration."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.vision.conftest import CLASSES, photos
from vision.embedder import OnnxEmbedder
from vision.errors import GalleryError, ImageError
from vision.gallery import Gallery
from vision.head import fit, fit_temperature, ledoit_wolf, softmax, train_calibrated
from vision.pack import load_pack
from vision.search import PhotoSearch


@pytest.fixture(scope="module")
def search(embedder: OnnxEmbedder) -> PhotoSearch:
    engine = PhotoSearch(embedder, threshold=0.5)
    keys, vectors = [], []
    for class_id in CLASSES:
        for photo in photos("train.txt", class_id, 6):
            keys.append(f"SKU-{class_id}")
            vectors.append(engine.embed(photo.path.read_bytes()))
    engine.rebuild(keys, np.stack(vectors))
    return engine


@pytest.fixture(scope="module")
def store_search(embedder: OnnxEmbedder) -> PhotoSearch:
    """A whole store's gallery: the demo's reference pack, 2,640 photos of 81 products."""
    pack = load_pack(REPO_ROOT / "hub" / "demo" / "reference-pack.npz", embedder.sha256)
    engine = PhotoSearch(embedder)
    engine.rebuild(pack.keys, pack.vectors)
    return engine


def test_val_photos_find_their_product_first(search: PhotoSearch) -> None:
    for class_id in CLASSES:
        for photo in photos("val.txt", class_id, 2):
            result = search.search(photo.path.read_bytes(), top_k=3)
            assert result.matches[0].key == f"SKU-{class_id}", photo.path.name
            assert len(result.matches) == 3
            assert result.ms > 0 and result.model == "grocery-lite0-int8.onnx"


def test_scores_are_probabilities_in_descending_order(search: PhotoSearch) -> None:
    result = search.search(photos("val.txt", CLASSES[0], 1)[0].path.read_bytes(), top_k=4)
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    assert 0.99 < sum(scores) < 1.01  # four products: the full distribution
    assert result.confident == (scores[0] >= 0.5 and result.similarity >= 0.4)


def unrelated_pictures() -> dict[str, bytes]:
    """Noise, a blank wall and a sheet of text, as PNG bytes."""
    rng = np.random.default_rng(1)
    pictures = {
        "noise": rng.integers(0, 256, (300, 300, 3), dtype=np.uint8),
        "blank": np.full((300, 300, 3), 128, np.uint8),
        "text": cv2.putText(
            np.full((300, 300, 3), 255, np.uint8),
            "HELLO",
            (20, 160),
            cv2.FONT_HERSHEY_SIMPLEX,
            3,
            (0, 0, 0),
            8,
        ),
    }
    return {name: cv2.imencode(".png", picture)[1].tobytes() for name, picture in pictures.items()}


def test_unrelated_pictures_are_not_sure(store_search: PhotoSearch) -> None:
    for name, data in unrelated_pictures().items():
        result = store_search.search(data)
        assert result.confident is False, name
        # the whitened distance alone rejects each of them, whatever their cosine to a product
        assert result.distance_ratio is not None
        assert result.distance_ratio > store_search.max_distance_ratio, name


def test_real_photos_pass_both_gates(store_search: PhotoSearch) -> None:
    for class_id in CLASSES:
        photo = photos("val.txt", class_id, 1)[0]
        result = store_search.search(photo.path.read_bytes())
        assert result.matches[0].key == f"GS-{class_id:03d}", photo.path.name
        assert result.similarity >= store_search.min_similarity, photo.path.name
        assert result.distance_ratio is not None
        assert result.distance_ratio <= store_search.max_distance_ratio, photo.path.name


def test_a_few_photos_per_product_leave_only_the_cosine_gate(search: PhotoSearch) -> None:
    """Six photos of four products hold out four: too few to measure a distance scale."""
    result = search.search(photos("val.txt", CLASSES[0], 1)[0].path.read_bytes())
    assert result.distance_ratio is None
    assert result.confident == (result.matches[0].score >= 0.5 and result.similarity >= 0.4)


def test_bad_bytes_raise_before_any_search(search: PhotoSearch) -> None:
    with pytest.raises(ImageError):
        search.search(b"GIF89a not supported")


def test_empty_gallery_says_what_to_do(embedder: OnnxEmbedder) -> None:
    with pytest.raises(GalleryError, match="add a photo"):
        PhotoSearch(embedder).search(b"\xff\xd8\xff")
    with pytest.raises(GalleryError, match="no reference photos"):
        Gallery.build([], np.zeros((0, 4), np.float32))


def test_single_product_gallery_ranks_by_similarity(embedder: OnnxEmbedder) -> None:
    data = photos("train.txt", CLASSES[0], 1)[0].path.read_bytes()
    gallery = Gallery.build(["ONLY"], embedder.embed(data)[None])
    (match,), ratio = gallery.rank(embedder.embed(data), 5)
    assert ratio is None
    assert match.key == "ONLY" and match.score == pytest.approx(1.0, abs=1e-5)


def test_head_learns_separable_classes_and_fits_a_temperature() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16, dtype=np.float32)
    labels = np.repeat(np.arange(3), 40)
    x = centres[labels] + rng.normal(0, 0.35, (120, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    head = train_calibrated(x, labels, 3)
    probabilities = head.probabilities(x)
    assert float((probabilities.argmax(1) == labels).mean()) > 0.95
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert 0.05 <= head.temperature <= 20.0


def test_whitening_ignores_the_direction_photos_of_one_product_vary_in() -> None:
    """Two products differ a little along axis 0; their photos vary a lot along axis 1. Plain
    cosine to the means is swamped by the variation; the whitened discriminant is not."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 200)
    x = np.zeros((400, 4), np.float32)
    x[:, 0] = np.where(labels == 0, -0.1, 0.1) + rng.normal(0, 0.03, 400)
    x[:, 1] = rng.normal(0, 1.0, 400)
    x[:, 2] = 1.0
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    train, test = np.arange(400) % 2 == 0, np.arange(400) % 2 == 1
    head = fit(x[train], labels[train], 2)
    assert float((head.cosines(x[test]).argmax(1) == labels[test]).mean()) > 0.97
    means = np.stack([x[train & (labels == k)].mean(0) for k in range(2)])
    plain = (x[test] @ means.T).argmax(1)
    assert float((plain == labels[test]).mean()) < 0.9


def test_one_photo_per_product_falls_back_to_centred_cosine() -> None:
    x = np.eye(3, 8, dtype=np.float32)
    head = fit(x, np.arange(3), 3)
    assert head.shrinkage == 1.0
    assert list(head.cosines(x).argmax(1)) == [0, 1, 2]
    with pytest.raises(ValueError, match="at least one photo"):
        fit(x, np.array([0, 0, 2]), 3)


def test_ledoit_wolf_shrinks_more_with_fewer_photos() -> None:
    rng = np.random.default_rng(0)
    few = ledoit_wolf(rng.normal(size=(20, 50)))[1]
    many = ledoit_wolf(rng.normal(size=(5000, 50)) * np.linspace(0.2, 2.0, 50))[1]
    assert 0.0 <= many < few <= 1.0


def test_temperature_recovers_how_overconfident_logits_are() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, (4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(true_logits)])
    assert fit_temperature(true_logits * 3.0, labels) == pytest.approx(3.0, rel=0.15)


def test_distance_scale_makes_held_out_like_photos_about_one_and_strangers_far() -> None:
    """Photos drawn like the enrolled ones sit near ratio 1 (the median of the held-out
    photos); a vector off in a direction no product varies in is far away, even though its
    cosine to one product mean stays high."""
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16, dtype=np.float32) * 3.0
    labels = np.repeat(np.arange(3), 100)
    x = centres[labels] + rng.normal(0, 0.3, (300, 16)).astype(np.float32)
    x[:, 8:] *= 0.1  # enrolled photos barely vary in the last eight directions
    head = train_calibrated(x, labels, 3)
    assert head.distance_scale is not None
    fresh = centres[labels[:60]] + rng.normal(0, 0.3, (60, 16)).astype(np.float32)
    fresh[:, 8:] *= 0.1
    ratios = head.assess(fresh)[1]
    assert ratios is not None and 0.6 < float(np.median(ratios)) < 1.5
    stranger = centres[:1].copy()
    stranger[0, 12] = 1.5  # cosine to product 0 is still 0.89
    stranger_ratios = head.assess(stranger)[1]
    assert stranger_ratios is not None and float(stranger_ratios[0]) > 5.0


def test_a_small_store_says_not_sure_to_pictures_of_no_product(embedder: OnnxEmbedder) -> None:
    """Why: a store of a few products with some staff photos each had no distance gate (it
    needed about 250 photos) and a temperature at the bottom of its range, so a "HELLO" picture
    came back as a product with score 1.0 and confident."""
    engine = PhotoSearch(embedder)
    keys, vectors = [], []
    for class_id in CLASSES:
        for photo in photos("train.txt", class_id, 10):
            keys.append(f"SKU-{class_id}")
            vectors.append(engine.embed(photo.path.read_bytes()))
    gallery = engine.rebuild(keys, np.stack(vectors))
    assert gallery.head is not None and gallery.head.distance_scale is not None
    assert gallery.head.temperature > 0.2  # every held-out photo was right: the prior holds it
    for name, data in unrelated_pictures().items():
        result = engine.search(data)
        assert result.confident is False and result.distance_ratio is not None, name
        assert result.distance_ratio > engine.max_distance_ratio, name
    answers = [
        (engine.search(photo.path.read_bytes()), f"SKU-{class_id}")
        for class_id in CLASSES
        for photo in photos("val.txt", class_id, 4)
    ]
    assert all(result.matches[0].key == key for result, key in answers)
    assert sum(result.confident for result, _ in answers) >= 14  # of 16 (one odd oat milk photo)


def test_one_photo_per_product_has_no_distance_scale(embedder: OnnxEmbedder) -> None:
    data = [photos("train.txt", c, 1)[0].path.read_bytes() for c in CLASSES]
    gallery = Gallery.build(
        [f"SKU-{c}" for c in CLASSES], np.stack([embedder.embed(d) for d in data])
    )
    assert gallery.head is not None and gallery.head.distance_scale is None
    matches, ratio = gallery.rank(embedder.embed(data[0]), 3)
    assert ratio is None and matches[0].key == f"SKU-{CLASSES[0]}"
