"""Embedding network -> ONNX (fp32) -> int8 ONNX (static QDQ, per-channel).

Measured facts this follows: torch's legacy exporter (``dynamo=False``) gives a clean graph; the
TF-style 'SAME' padding exports as Pad ops, which are folded into the following convolutions;
static per-channel int8 with percentile calibration keeps the features (cosine ~0.995 to fp32)
and cuts inference time, while per-tensor or dynamic int8 damage them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from vision.tools import require_torch

INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
OPSET = 17


def export_fp32(embedder: object, size: int, path: Path) -> Path:
    """Export the embedder in eval mode with a dynamic batch axis, then fold its Pad ops."""
    require_torch()
    import onnx
    import torch

    embedder.eval()  # type: ignore[attr-defined]
    sample = torch.zeros(1, 3, size, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            embedder,
            (sample,),
            str(raw),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        model = onnx.load(str(raw))
        fold_pads(model)
        onnx.checker.check_model(model)
        folded = Path(tmp) / "folded.onnx"
        onnx.save(model, str(folded))
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(folded), str(path), skip_symbolic_shape=True)
    return path


def fold_pads(model: object) -> int:
    """Fold constant zero Pad nodes into the Conv that consumes them; return how many were folded.

    ONNX Conv takes per-side ``pads``, so TF's asymmetric 'SAME' padding folds too, and the graph
    is left with convolutions only, which the int8 quantiser handles as single units.
    """
    from onnx import helper, numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list[object]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed = []
    for pad in graph.node:
        if pad.op_type != "Pad":
            continue
        mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
        users = consumers.get(pad.output[0], [])
        if mode != b"constant" or len(users) != 1 or users[0].op_type != "Conv":
            continue
        pads = constants.get(pad.input[1]) if len(pad.input) > 1 else None
        value = constants.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else None
        if pads is None or (value is not None and np.any(value != 0)):
            continue
        pads = pads.astype(np.int64).reshape(2, -1)  # begins, ends over N, C, H, W
        if np.any(pads[:, :2] != 0) or np.any(pads < 0):
            continue
        conv = users[0]
        current = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0, 0, 0, 0])
        merged = [
            current[0] + pads[0, 2],
            current[1] + pads[0, 3],
            current[2] + pads[1, 2],
            current[3] + pads[1, 3],
        ]
        kept = [a for a in conv.attribute if a.name not in ("pads", "auto_pad")]
        del conv.attribute[:]
        conv.attribute.extend([*kept, helper.make_attribute("pads", [int(p) for p in merged])])
        conv.input[0] = pad.input[0]
        removed.append(pad)
    for node in removed:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        graph.node.remove(node)
    return len(removed)


class _Calibration:
    """Feeds calibration batches to onnxruntime's quantiser."""

    def __init__(self, inputs: Sequence[np.ndarray]) -> None:
        self._inputs: Iterator[np.ndarray] = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._inputs, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantise_int8(
    fp32: Path, out: Path, calibration: Sequence[np.ndarray], reduce_range: bool = True
) -> Path:
    """Static QDQ int8: per-channel weights, uint8 activations, percentile calibration.

    ``reduce_range`` keeps weights to 7 bits. Why: on x86 CPUs without VNNI (AVX2 only, like the
    build and CI machines) onnxruntime's uint8 x int8 kernels sum pairs of products in 16 bits and
    saturate; with full-range weights the features drift (cosine to fp32 about 0.89 on ImageNet
    Lite0), with 7-bit weights they stay close (about 0.97). Arm CPUs do not saturate either way.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not calibration:
        raise ValueError("int8 quantisation needs calibration images")
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(fp32),
        str(out),
        _Calibration(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
    )
    return out


def dequantise(int8: Path, out: Path) -> Path:
    """Write the float twin of a QDQ int8 model: every weight dequantised to fp32 once, every
    activation's quantise/dequantise pair replaced by a clip to the range it could represent
    (the quantiser drops ReLU6 and the like where that range already clips them).

    Why: the benchmark compares int8 with fp32 arithmetic, and the fp32 file a training run
    quantised from lives in its work folder, not in a checkout. The twin is the same graph with
    the same (rounded) weights, so it measures what int8 arithmetic buys in time and what
    quantising the activations costs in accuracy; rounding the weights is not in the comparison.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(int8))
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    kept, weights = [], []
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            continue  # dropped; each DequantizeLinear after it becomes a clip below
        if node.op_type != "DequantizeLinear":
            kept.append(node)
            continue
        source = node.input[0]
        if source in constants:
            weights.append(numpy_helper.from_array(_dequantised(node, constants), node.output[0]))
        elif source in producers and producers[source].op_type == "QuantizeLinear":
            quantise = producers[source]
            low, high = (f"{node.output[0]}_{end}" for end in ("low", "high"))
            for value, name in zip(_representable(quantise, constants), (low, high), strict=True):
                weights.append(numpy_helper.from_array(np.float32(value), name))
            kept.append(helper.make_node("Clip", [quantise.input[0], low, high], node.output))
        else:
            raise ValueError(f"{int8.name}: {node.name or node.output[0]} dequantises no constant")
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    floats = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend([*floats, *weights])
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def _dequantised(node: object, constants: dict[str, np.ndarray]) -> np.ndarray:
    """``(q - zero_point) * scale`` along the node's axis (per-channel weights) or per tensor."""
    inputs = list(node.input)  # type: ignore[attr-defined]
    values = constants[inputs[0]].astype(np.float32)
    scale = constants[inputs[1]].astype(np.float32)
    zero = constants[inputs[2]] if len(inputs) > 2 and inputs[2] else np.zeros_like(scale)
    if scale.ndim == 1 and scale.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)  # type: ignore[attr-defined]
        shape = [1] * values.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (values - zero.astype(np.float32)) * scale


def _representable(quantise: object, constants: dict[str, np.ndarray]) -> tuple[float, float]:
    """The real range a per-tensor QuantizeLinear can represent: its integer type's ends."""
    inputs = list(quantise.input)  # type: ignore[attr-defined]
    scale = float(constants[inputs[1]])
    zero = constants[inputs[2]] if len(inputs) > 2 and inputs[2] else np.uint8(0)
    ends = np.iinfo(zero.dtype)
    return (ends.min - int(zero)) * scale, (ends.max - int(zero)) * scale
