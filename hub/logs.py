"""Logging: structured records to journald when running under systemd, plain lines otherwise.

The journal handler speaks journald's native datagram protocol directly (no compiled binding
needed), so every record carries searchable fields: ``journalctl -u retail-hub STORE_ID=x
LOGGER=hub.orders``, plus any ``extra={...}`` a log call adds (e.g. ``ORDER_ID``).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
             logging.DEBUG: 7}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class OutOfFiles(logging.Filter):
    """Lets asyncio's "socket.accept() out of system resource" through once a minute, with how
    many were held back.

    Why: with every file descriptor in use asyncio retries each waiting connection and logs a
    traceback each time: an outside check saw 373,113 of them, 167 MB of log, in 53 s, the
    event loop busy writing them while the hub could answer nothing.
    """

    MESSAGE = "socket.accept() out of system resource"

    def __init__(self, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self.held_back = 0
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.MESSAGE):
            return True
        now = self.clock()
        if self._last is not None and now - self._last < self.every_s:
            self.held_back += 1
            return False
        if self.held_back:
            record.msg = f"{record.msg} ({self.held_back} more in the last {self.every_s:.0f} s)"
            record.exc_info = None  # the first one had the traceback
        self._last, self.held_back = now, 0
        return True


class JournalHandler(logging.Handler):
    """Sends each record to journald as one native-protocol datagram with structured fields."""

    def __init__(self, socket_path: Path = JOURNAL_SOCKET, **fields: str) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.fields = {k.upper(): v for k, v in fields.items()}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {
                "MESSAGE": self.format(record),
                "PRIORITY": str(_PRIORITY.get(record.levelno, 6)),
                "LOGGER": record.name,
                "CODE_FILE": record.pathname,
                "CODE_LINE": str(record.lineno),
                "CODE_FUNC": record.funcName,
                "SYSLOG_IDENTIFIER": "retail-hub",
                **self.fields,
            }
            for key, value in vars(record).items():
                if key not in _STANDARD and not key.startswith("_"):
                    fields[key.upper()] = str(value)
            self._sock.sendto(encode(fields), str(self.socket_path))
        except Exception:  # noqa: BLE001 - logging must never take the hub down
            self.handleError(record)

    def close(self) -> None:
        self._sock.close()
        super().close()


def encode(fields: dict[str, str]) -> bytes:
    """journald's native format: KEY=value lines, or KEY\\n<u64 length><value>\\n for multi-line."""
    out = bytearray()
    for key, value in fields.items():
        name = "".join(ch if ch.isalnum() else "_" for ch in key).lstrip("_") or "FIELD"
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += name.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


def configure(verbose: bool = False, **fields: str) -> None:
    """Log to journald when systemd connected our output to it, otherwise to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler: logging.Handler
    if os.environ.get("JOURNAL_STREAM") and JOURNAL_SOCKET.exists():
        handler = JournalHandler(**fields)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    asyncio_log = logging.getLogger("asyncio")
    for old in [f for f in asyncio_log.filters if isinstance(f, OutOfFiles)]:
        asyncio_log.removeFilter(old)
    asyncio_log.addFilter(OutOfFiles())
