"""Typed errors for everything ``beacons`` reads from outside (radio frames, trace files, member
files, fleet files, adapters). Each carries a message a person can act on, so the CLI and the web
app can show it as is instead of a traceback."""

from __future__ import annotations


class BeaconsError(Exception):
    """Base of every error this package raises on purpose."""


class FrameError(BeaconsError, ValueError):
    """Bytes that claim to be a beacon frame but do not follow its layout."""


class TraceError(BeaconsError):
    """A line of an advertisement trace that cannot be read; names the file and line."""

    def __init__(self, message: str, *, source: str = "<trace>", line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.message = message
        self.source = source
        self.line = line


class MembersFileError(BeaconsError):
    """A members file (chain prefix and member keys) that is missing fields or malformed."""


class FleetError(BeaconsError):
    """A fleet declaration (beacons and scanner nodes) that fails its schema or cross-checks."""


class ScannerUnavailableError(BeaconsError):
    """The Bluetooth adapter or BlueZ cannot be used; the message says what to check."""


class RelayBrokerError(BeaconsError):
    """The relay nodes' MQTT broker refuses the hub's login, fails TLS or cannot be reached."""
