"""Reading an input file without trusting its size.

``stat()`` says 0 for a device, a FIFO or a /proc file, so a size check passes /dev/zero, which
then fills the memory."""

from __future__ import annotations

from pathlib import Path


def read_at_most(path: Path, limit: int) -> bytes | None:
    """The contents of ``path``, or None when it holds more than ``limit`` bytes: no more than
    ``limit + 1`` bytes are read, whatever the file claims to be. OSError as ``open`` raises it."""
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    return None if len(data) > limit else data
