"""Range checks shared by the frame dataclasses: a frame object can only hold values its byte
layout can carry, so building bytes from any constructed frame never fails half-way."""

from __future__ import annotations

from beacons.errors import FrameError


def check_int(name: str, value: int, low: int, high: int) -> None:
    """Raise FrameError unless ``low <= value <= high`` (the field's width in the layout)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise FrameError(f"{name} must be between {low} and {high}, got {value}")


def check_bytes(name: str, value: bytes, length: int) -> None:
    """Raise FrameError unless ``value`` is exactly ``length`` bytes."""
    if not isinstance(value, bytes) or len(value) != length:
        raise FrameError(f"{name} must be {length} bytes, got {value!r}")


def int8(value: int) -> int:
    """Interpret one unsigned byte as a signed 8-bit integer (two's complement)."""
    return value - 256 if value >= 128 else value
