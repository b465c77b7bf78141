"""Photo search on the Grocery Store split: accuracy and latency of the int8 and fp32 models with
1 and 2 threads, against two classical baselines measured in the same run (HSV colour-histogram
nearest neighbour, and OpenCV ORB keypoint matching).

    .venv/bin/python bench/vision.py [--split val.txt] [--orb-queries 30]

The models run through the hub's own eval path (a fresh store, catalogue image and train photos
enrolled, every split photo searched with ``PhotoService.search``). The baselines see the same
gallery (catalogue image + train photos) and the same queries, decoded by the same preprocessing.
ORB is slow (seconds per query against thousands of photos), so it answers an evenly spaced
subset of the queries; its ``n`` says how many. The fp32 model is the one ``retail-hub vision
train`` leaves in its --work folder (default build/vision/) when its sha256 is the one the int8
model's provenance names; otherwise (a fresh checkout has no such file) it is the int8 file's float
twin (``vision.tools.export.dequantise``: the same graph and weights in fp32 arithmetic), and the
fp32 entry's ``source`` says which. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.cli.vision import dataset_store, evaluate, read_split_checked  # noqa: E402
from hub.config.vision import PACKAGED_MODEL, VisionConfig  # noqa: E402
from vision.dataset import LabelledPhoto, read_classes, read_split  # noqa: E402
from vision.embedder import file_sha256  # noqa: E402
from vision.preprocess import Preprocessor  # noqa: E402
from vision.tools.export import dequantise  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "grocery"
FP32 = ROOT / "build" / "vision" / "grocery-lite0-fp32.onnx"
Features = Callable[[np.ndarray], object]
Distance = Callable[[object, object], float]


def model_figures(model: Path, dataset: Path, queries: list[LabelledPhoto]) -> dict[str, object]:
    """Accuracy once, latency with 1 and 2 threads, through the product's eval path."""
    out: dict[str, object] = {"file": model.name, "bytes": model.stat().st_size}
    with dataset_store(dataset, VisionConfig(model_path=model, threads=1)) as store:
        for threads in (1, 2):
            store.service.config.threads = threads
            store.service.load()  # a new session with this thread count; vectors are reused
            figures = evaluate(store, queries)
            out[f"threads_{threads}"] = {"ms_p50": figures["ms_p50"], "ms_p95": figures["ms_p95"]}
            out.update({k: figures[k] for k in ("n", "top1", "top5", "coarse_top1")})
    return out


def float_model(fp32: Path, int8: Path, work: Path) -> tuple[Path, str]:
    """The fp32 model to compare with, and where it came from: the training run's float file when
    its sha256 is the ``fp32_sha256`` in the int8 model's provenance, else the int8 file's float
    twin. Why check: a work folder keeps the fp32 file of an earlier run, and comparing against
    that means nothing."""
    provenance = int8.with_suffix(".json")
    expected = (
        json.loads(provenance.read_text(encoding="utf-8")).get("fp32_sha256")
        if provenance.is_file()
        else None
    )
    if fp32.is_file() and (expected is None or file_sha256(fp32) == expected):
        return fp32, f"the training run's float file {fp32}"
    if not fp32.is_file():
        why = f"{fp32} does not exist (retail-hub vision train writes it to its --work folder)"
    else:
        why = f"the sha256 of {fp32} is not the fp32_sha256 {expected} in {provenance.name}"
    twin = dequantise(int8, work / f"{int8.stem}-dequantised.onnx")
    return twin, f"dequantised from {int8.name}, weights rounded as in int8: {why}"


def gallery_photos(dataset: Path) -> list[LabelledPhoto]:
    """What the models are enrolled with: each catalogue image, then the train photos."""
    classes = read_classes(dataset)
    iconic = [LabelledPhoto(c.iconic, c.class_id, c.coarse_id) for c in classes if c.iconic]
    return iconic + read_split(dataset, "train.txt")


def hsv_histogram(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, None).flatten()


def histogram_distance(a: object, b: object) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))  # type: ignore[arg-type]


class OrbMatcher:
    """ORB descriptors and a Hamming matcher with Lowe's ratio test; distance = -good matches."""

    def __init__(self) -> None:
        self.orb = cv2.ORB_create(nfeatures=500)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)

    def features(self, rgb: np.ndarray) -> object:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return self.orb.detectAndCompute(grey, None)[1]

    def distance(self, a: object, b: object) -> float:
        if a is None or b is None or len(a) < 2 or len(b) < 2:  # type: ignore[arg-type]
            return 0.0
        pairs = self.matcher.knnMatch(a, b, k=2)  # type: ignore[arg-type]
        good = sum(1 for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance)
        return -float(good)


def baseline(
    name: str,
    features: Features,
    distance: Distance,
    gallery: list[LabelledPhoto],
    queries: list[LabelledPhoto],
    coarse: dict[int, int],
) -> dict[str, object]:
    """Nearest-neighbour product ranking: a product's distance is its nearest gallery photo's."""
    pre = Preprocessor()

    def load(photo: LabelledPhoto) -> np.ndarray:
        return pre.resize_short(pre.decode(photo.path.read_bytes()))

    index = [(photo.class_id, features(load(photo))) for photo in gallery]
    top1 = top5 = coarse_hits = 0
    times = []
    for query in queries:
        started = time.perf_counter()
        probe = features(load(query))
        best: dict[int, float] = {}
        for class_id, item in index:
            d = distance(probe, item)
            if d < best.get(class_id, np.inf):
                best[class_id] = d
        ranked = sorted(best, key=best.__getitem__)[:5]
        times.append((time.perf_counter() - started) * 1000)
        top1 += ranked[0] == query.class_id
        top5 += query.class_id in ranked
        coarse_hits += coarse[ranked[0]] == query.coarse_id
    n = len(queries)
    return {
        "method": name,
        "n": n,
        "top1": round(top1 / n, 4),
        "top5": round(top5 / n, 4),
        "coarse_top1": round(coarse_hits / n, 4),
        "ms_p50": round(float(np.percentile(times, 50)), 2),
        "ms_p95": round(float(np.percentile(times, 95)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--split", default="val.txt")
    parser.add_argument("--int8", type=Path, default=PACKAGED_MODEL)
    parser.add_argument("--fp32", type=Path, default=FP32)
    parser.add_argument("--orb-queries", type=int, default=30)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    queries = read_split_checked(args.dataset, args.split)
    result: dict[str, object] = {"split": args.split, "dataset_photos": len(queries)}
    models: dict[str, object] = {"int8": model_figures(args.int8, args.dataset, queries)}
    with tempfile.TemporaryDirectory() as work:
        fp32, source = float_model(args.fp32, args.int8, Path(work))
        models["fp32"] = {"source": source, **model_figures(fp32, args.dataset, queries)}
    result["models"] = models
    gallery = gallery_photos(args.dataset)
    coarse = {c.class_id: c.coarse_id for c in read_classes(args.dataset)}
    step = max(1, len(queries) // max(1, args.orb_queries))
    orb = OrbMatcher()
    result["baselines"] = {
        "hsv_histogram_1nn": baseline(
            "HSV 16x8x8 histogram, Bhattacharyya 1-NN",
            hsv_histogram,
            histogram_distance,
            gallery,
            queries,
            coarse,
        ),
        "orb_keypoints": baseline(
            "ORB 500 keypoints, ratio-test match count",
            orb.features,
            orb.distance,
            gallery,
            queries[::step][: args.orb_queries],
            coarse,
        ),
    }
    int8 = models["int8"]
    assert isinstance(int8, dict)
    hsv = result["baselines"]["hsv_histogram_1nn"]  # type: ignore[index]
    ratios: dict[str, object] = {
        "int8_top1_over_hsv_top1": round(int8["top1"] / max(hsv["top1"], 1e-9), 2)
    }
    fp32 = models["fp32"]
    assert isinstance(fp32, dict)
    ratios["int8_over_fp32_ms_p50_1thread"] = round(
        int8["threads_1"]["ms_p50"] / fp32["threads_1"]["ms_p50"], 2
    )
    ratios["int8_minus_fp32_top1"] = round(int8["top1"] - fp32["top1"], 4)
    ratios["int8_over_fp32_bytes"] = round(int8["bytes"] / fp32["bytes"], 3)
    result["ratios"] = ratios
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
