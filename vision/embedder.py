"""Runs the ONNX embedding model with onnxruntime on the CPU: photo bytes -> unit-length vector.

The session is created once with the configured thread count and warmed up with one inference, so
the first shopper does not pay for onnxruntime's lazy initialisation.

onnxruntime's own telemetry is turned off before it loads (``ORT_DISABLE_TELEMETRY``, read once
per process when the library initialises; an operator may set it to 0): since 1.29 the PyPI
build on Linux records a process event at import and session events afterwards in
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` with a device id, and uploads them when the
network allows. A hub in a shop has no business reporting to a third party.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort  # noqa: E402  (after the telemetry setting, which it reads on load)

from vision.errors import ModelError
from vision.preprocess import Preprocessor


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks; it names the model the stored embeddings came from."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class OnnxEmbedder:
    """One ONNX model file, its matching preprocessing, and a warmed-up inference session."""

    def __init__(self, path: Path, threads: int = 1, max_pixels: int = 40_000_000) -> None:
        if not path.is_file():
            raise ModelError(f"the photo model file {path} does not exist; check vision.model_path")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"the photo model {path} cannot be loaded: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else []
        if (
            len(shape) != 4
            or shape[1] != 3
            or shape[2] != shape[3]
            or not isinstance(shape[2], int)
        ):
            raise ModelError(f"{path} must take one (N, 3, S, S) image input; it takes {shape}")
        if len(outputs) != 1 or len(outputs[0].shape) != 2:
            raise ModelError(f"{path} must give one (N, D) embedding output")
        self.path = path
        self.sha256 = file_sha256(path)
        self.threads = threads
        self.dim = int(outputs[0].shape[1])
        self._input = inputs[0].name
        self.preprocessor = Preprocessor(size=int(shape[2]), max_pixels=max_pixels)
        self.embed_inputs(np.zeros((1, 3, shape[2], shape[3]), dtype=np.float32))

    @property
    def name(self) -> str:
        """The model's file name, shown in answers and the eval so figures name their model."""
        return self.path.name

    def embed_inputs(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) preprocessed inputs -> (N, D) L2-normalised float32 embeddings."""
        (features,) = self._session.run(None, {self._input: batch})
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return (features / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, data: bytes) -> np.ndarray:
        """Photo bytes -> one (D,) unit vector, through the one shared preprocessing path."""
        return self.embed_inputs(self.preprocessor(data))[0]
