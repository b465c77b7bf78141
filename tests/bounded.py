"""Running the CLI on an endless input (/dev/zero) under a memory limit: a reader that trusts
``stat()`` (size 0 for a device) reads on until the limit stops it with a MemoryError traceback,
instead of filling the test machine's memory."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

#: Address space the command may use: the interpreter with pydantic and click takes a few
#: hundred MiB, a bounded read a few MiB more.
LIMIT_BYTES = 1536 * 1024 * 1024


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def run_bounded(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``retail-hub ARGS`` in ``cwd``, under LIMIT_BYTES of memory and a minute."""
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        preexec_fn=_limit,
    )
