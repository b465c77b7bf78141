"""Reference packs: the demo's committed pack belongs to the committed model and holds what
enrolment stores for the dataset's train photos; a store adds a pack to its gallery only when the
pack was made with the loaded model."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.demo.store import CATALOG, REFERENCE_PACK, prepare_demo
from hub.photo_search import PhotoService
from hub.services import build_services
from tests.conftest import GROCERY
from tests.vision.conftest import BANANA, MODEL, OAT_MILK, photos
from tests.vision.test_eval_cli import small_dataset
from vision.dataset import read_split
from vision.embedder import OnnxEmbedder, file_sha256
from vision.pack import PackError, ReferencePack, load_pack, save_pack


def test_demo_pack_is_the_train_split_embedded_by_the_committed_model(
    embedder: OnnxEmbedder,
) -> None:
    pack = load_pack(REFERENCE_PACK, file_sha256(MODEL))
    train = read_split(GROCERY, "train.txt")
    assert Counter(pack.keys) == Counter(f"GS-{p.class_id:03d}" for p in train)
    skus = {p["sku"] for p in json.loads(CATALOG.read_text(encoding="utf-8"))["products"]}
    assert set(pack.keys) <= skus
    for index in (0, 1000, len(train) - 1):  # pack order is train.txt order
        fresh = embedder.embed(train[index].path.read_bytes())
        assert float(fresh @ pack.vectors[index]) > 0.999, train[index].path.name
    assert REFERENCE_PACK.stat().st_size < 4 * 1024 * 1024


def test_pack_command_writes_what_enrolment_stored_and_refuses_another_model(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    dataset = small_dataset(tmp_path / "data")
    out = tmp_path / "pack.npz"
    result = CliRunner().invoke(main, ["vision", "pack", str(dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["photos"] == 20
    pack = load_pack(out, embedder.sha256)
    first = read_split(dataset, "train.txt")[0]
    assert pack.keys[0] == f"GS-{first.class_id:03d}"
    assert float(pack.vectors[0] @ embedder.embed(first.path.read_bytes())) > 0.999
    np.testing.assert_allclose(np.linalg.norm(pack.vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(PackError, match="rebuild it with 'retail-hub vision pack'"):
        load_pack(out, "0" * 64)


def test_int8_storage_keeps_the_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = np.maximum(rng.normal(size=(50, 1280)), 0).astype(np.float32)  # like ReLU features
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path / "pack.npz"
    save_pack(path, ReferencePack("a" * 64, [f"K{i}" for i in range(50)], vectors))
    loaded = load_pack(path, "a" * 64)
    assert loaded.keys == [f"K{i}" for i in range(50)]
    assert float(np.min(np.sum(loaded.vectors * vectors, axis=1))) > 0.9999
    with pytest.raises(PackError, match="makes 64-d ones"):
        load_pack(path, "a" * 64, dim=64)
    with pytest.raises(PackError, match="cannot be read"):
        load_pack(tmp_path / "absent.npz", "a" * 64)


def test_store_adds_the_pack_for_its_own_products_only(tmp_path: Path) -> None:
    """The demo store: catalogue images from the demo catalogue, shop photos from the pack. Keys
    of products the store lacks are skipped; a pack made with another model is left out without
    taking photo search down."""
    config = prepare_demo(tmp_path / "demo", 0).config
    assert config.vision.reference_pack == REFERENCE_PACK
    services = build_services(config)
    try:
        service = PhotoService(
            services.db,
            services.catalog,
            services.inventory,
            config.store.images_dir,
            config.vision,
        )
        service.load()
        gallery = service.engine.gallery
        assert gallery is not None and gallery.photos == 81 + 2640
        for class_id in (BANANA, OAT_MILK):
            found = service.ranked_skus(photos("val.txt", class_id, 1)[0].path.read_bytes(), 1)
            assert found[0] == [f"GS-{class_id:03d}"]

        vectors = np.eye(2, service.engine.embedder.dim, dtype=np.float32)
        foreign = tmp_path / "foreign.npz"
        save_pack(foreign, ReferencePack(service.model_sha, ["GS-006", "NOT-SOLD"], vectors))
        config.vision.reference_pack = foreign
        service.load()
        assert service.engine.gallery is not None and service.engine.gallery.photos == 81 + 1
        other = tmp_path / "other.npz"
        save_pack(other, ReferencePack("f" * 64, ["GS-006", "GS-045"], vectors))
        config.vision.reference_pack = other
        service.load()
        assert service.engine.gallery is not None and service.engine.gallery.photos == 81
        # the model's sha but vectors of another size (a forged or half-rebuilt pack)
        narrow = tmp_path / "narrow.npz"
        save_pack(narrow, ReferencePack(service.model_sha, ["GS-006"], np.eye(1, 64, dtype="f4")))
        config.vision.reference_pack = narrow
        service.load()
        assert service.engine.gallery is not None and service.engine.gallery.photos == 81
    finally:
        services.close()


def test_damaged_or_foreign_pack_files_are_pack_errors(tmp_path: Path) -> None:
    """Why: a truncated, corrupted or empty pack stopped the hub at start (a traceback, or
    click's bare "Aborted!" for an empty file), and a pack holding NaN made every photo answer
    invalid JSON; the hub's loader leaves out only what is a PackError."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    good = tmp_path / "good.npz"
    save_pack(good, ReferencePack("a" * 64, ["A", "B", "C", "D"], vectors))
    whole = good.read_bytes()
    cases = {
        "empty.npz": b"",
        "truncated.npz": whole[: len(whole) // 2],
        "corrupt.npz": whole[:100] + bytes(200) + whole[300:],
        "text.npz": b"not a pack at all",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PackError, match="reference pack"):
            load_pack(tmp_path / name, "a" * 64)
    with pytest.raises(PackError, match="not all finite"):  # nor is such a pack written
        save_pack(tmp_path / "nan.npz", ReferencePack("a" * 64, list("ABCD"), vectors * np.nan))
    zero = tmp_path / "zero.npz"
    save_pack(zero, ReferencePack("a" * 64, ["A", "B", "C", "D"], np.zeros_like(vectors)))
    nan = tmp_path / "nan.npz"  # as a damaged file could hold it
    np.savez(nan, format=np.array(1), model_sha=np.array("a" * 64), keys=np.array(list("ABCD")),
             codes=np.ones((4, 8), np.int8), scales=np.full(4, np.nan, np.float32))
    for path in (zero, nan):
        with pytest.raises(PackError, match="not finite or are zero"):
            load_pack(path, "a" * 64)
    np.savez(tmp_path / "shapes.npz", format=np.array(1), model_sha=np.array("a" * 64),
             keys=np.array(["A"]), codes=np.zeros(3, np.int8), scales=np.ones(3, np.float32))
    with pytest.raises(PackError, match="codes of shape"):
        load_pack(tmp_path / "shapes.npz", "a" * 64)
