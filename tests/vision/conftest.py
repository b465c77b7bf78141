"""Shared fixtures of the photo-search tests: the committed model, real dataset photos, and
hand-built hostile files."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from tests.conftest import GROCERY, REPO_ROOT
from vision.dataset import LabelledPhoto, read_split
from vision.embedder import OnnxEmbedder

MODEL = REPO_ROOT / "vision" / "models" / "grocery-lite0-int8.onnx"
PROVENANCE = MODEL.with_suffix(".json")

#: Products that look nothing alike, so a handful of photos each is enough to tell them apart.
BANANA, AUBERGINE, OAT_MILK, RED_PEPPER = 6, 60, 45, 71
CLASSES = (BANANA, AUBERGINE, OAT_MILK, RED_PEPPER)


def photos(split: str, class_id: int, count: int) -> list[LabelledPhoto]:
    """The first ``count`` photos of a class in a split of the Grocery Store dataset."""
    chosen = [p for p in read_split(GROCERY, split) if p.class_id == class_id][:count]
    assert len(chosen) == count, f"{split} has fewer than {count} photos of class {class_id}"
    return chosen


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(MODEL, threads=1)


@pytest.fixture(scope="session")
def val_photo() -> bytes:
    return photos("val.txt", BANANA, 1)[0].path.read_bytes()


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    """A JPEG with a minimal EXIF APP1 segment (big-endian TIFF, one Orientation entry)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header claiming another size (what a decoder allocates)."""
    sof = data.find(b"\xff\xc0")
    assert sof > 0, "baseline JPEG expected"
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def png_bomb(side: int) -> bytes:
    """A real PNG decompression bomb: a ``side`` x ``side`` all-black greyscale image whose IDAT
    stream compresses to a few hundred kilobytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0 and a row of zeros
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def bomb() -> bytes:
    return png_bomb(20_000)
