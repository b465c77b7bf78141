"""Reference packs: the embeddings of a store's reference photos without the photos themselves.

Why: a gallery searches well on shop photos only when it holds shop photos of each product (the
demo catalogue's product images alone give about 0.80 top-1 on the val split where the dataset's
train photos give 0.875), but the photos are far too large to ship. A pack holds what enrolment
stored for them, one unit vector per photo and the product key, tied to the sha256 of the model
that made the vectors: vectors of another model are meaningless, so a pack for another model is
refused.

Vectors are stored as int8 with one scale per vector (a quarter of float32; the cosine to the
original is above 0.9999, far below anything that moves a ranking).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.errors import VisionError

FORMAT = 1


class PackError(VisionError):
    """The pack file is missing, damaged or made with another model."""

    code = "bad_reference_pack"


@dataclass(frozen=True)
class ReferencePack:
    """Product keys and their photos' unit embeddings, made by the model with ``model_sha``."""

    model_sha: str
    keys: list[str]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.vectors) or self.vectors.ndim != 2:
            raise PackError(f"{len(self.keys)} keys for vectors of shape {self.vectors.shape}")


def save_pack(path: Path, pack: ReferencePack) -> None:
    """Write a pack as a compressed ``.npz``: int8 vectors, float32 scales, keys, model sha."""
    vectors = np.asarray(pack.vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():  # a store would load every answer as invalid JSON
        raise PackError("the vectors to pack are not all finite: the model gave NaN or infinity")
    scales = np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0
    codes = np.round(vectors / scales[:, None]).astype(np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(
            handle,
            format=np.array(FORMAT),
            model_sha=np.array(pack.model_sha),
            keys=np.array(pack.keys),
            codes=codes,
            scales=scales.astype(np.float32),
        )


def load_pack(path: Path, model_sha: str, dim: int | None = None) -> ReferencePack:
    """Read a pack made with the model ``model_sha`` (whose embeddings have ``dim`` dimensions,
    when given); vectors come back unit-length float32. Anything else (a damaged or truncated
    file, another kind of file, vectors that are not finite or are all zero) is a PackError, so
    a bad pack is left out instead of stopping the hub or putting NaN scores in answers."""
    rebuild = "rebuild it with 'retail-hub vision pack'"
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format"])
            made_with = str(data["model_sha"])
            keys = [str(key) for key in np.asarray(data["keys"]).reshape(-1)]
            codes = np.asarray(data["codes"], dtype=np.float32)
            scales = np.asarray(data["scales"], dtype=np.float32)
    except OSError as exc:
        raise PackError(f"the reference pack {path} cannot be read: {exc.strerror or exc}") from exc
    except (EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise PackError(
            f"{path} is not a reference pack made by 'retail-hub vision pack' "
            f"({type(exc).__name__}); {rebuild}"
        ) from exc
    if version != FORMAT:
        raise PackError(f"the reference pack {path} has format {version}; this hub reads {FORMAT}")
    if made_with != model_sha:
        raise PackError(
            f"the reference pack {path} was made with model {made_with[:12]}, not the loaded "
            f"model {model_sha[:12]}; {rebuild}"
        )
    if codes.ndim != 2 or scales.shape != codes.shape[:1] or len(keys) != len(codes):
        raise PackError(
            f"the reference pack {path} holds {len(keys)} keys, codes of shape {codes.shape} "
            f"and scales of shape {scales.shape}; {rebuild}"
        )
    if dim is not None and codes.shape[1:] != (dim,):
        raise PackError(
            f"the reference pack {path} holds vectors of shape {codes.shape[1:]}, the model "
            f"makes {dim}-d ones; {rebuild}"
        )
    vectors = codes * scales[:, None]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not (np.isfinite(vectors).all() and (norms > 0).all()):
        raise PackError(f"the reference pack {path} holds vectors that are not finite or are zero")
    return ReferencePack(made_with, keys, vectors / norms)
