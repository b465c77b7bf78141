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
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
             logging.DEBUG: 7}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


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
