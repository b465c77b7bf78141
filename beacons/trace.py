"""Reading and writing advertisement traces (JSON Lines, one ``Advertisement`` per line).

Decoding uses msgspec against the typed record, so a malformed line fails with the field and the
line number rather than a KeyError deep in the presence engine."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from beacons.advertisement import Advertisement
from beacons.errors import TraceError

_decoder = msgspec.json.Decoder(Advertisement)
#: Received power a Bluetooth LE radio can report, in dBm (HCI reports -127..20).
RSSI_DBM = (-130, 30)
_encoder = msgspec.json.Encoder()


def decode_line(
    line: bytes | str, *, source: str = "<trace>", number: int | None = None
) -> Advertisement:
    """Decode one trace line. Raises TraceError naming ``source:number`` and the bad field."""
    try:
        adv = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        raise TraceError(f"not an advertisement record: {exc}", source=source, line=number) from exc
    except msgspec.DecodeError as exc:
        raise TraceError(f"not valid JSON: {exc}", source=source, line=number) from exc
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)",
            source=source,
            line=number,
        ) from exc
    except RecursionError as exc:
        raise TraceError("JSON nested too deeply", source=source, line=number) from exc
    if adv.t != adv.t or adv.t in (float("inf"), float("-inf")):
        raise TraceError("t must be a finite Unix time in seconds", source=source, line=number)
    if not RSSI_DBM[0] <= adv.rssi <= RSSI_DBM[1]:
        raise TraceError(
            f"rssi must be dBm between {RSSI_DBM[0]} and {RSSI_DBM[1]}, got {adv.rssi}",
            source=source,
            line=number,
        )
    try:  # now, not when a frame parser needs the bytes: there a bad line was dropped unsaid
        adv.manufacturer_bytes()
        adv.service_bytes()
    except TraceError as exc:
        raise TraceError(exc.message, source=source, line=number) from None
    return adv


def iter_lines(stream: IO[bytes], *, source: str) -> Iterator[Advertisement]:
    """Decode a stream of trace lines, skipping blank lines; errors name ``source`` and the line.
    A byte-order mark before the first line (some Windows tools write one) is skipped."""
    for number, line in enumerate(stream, start=1):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if line.strip():
            yield decode_line(line, source=source, number=number)


def read_trace(path: Path) -> Iterator[Advertisement]:
    """Every advertisement of the trace file at ``path``, in file order."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise TraceError(f"cannot open trace: {exc.strerror}", source=str(path)) from exc
    with stream:
        yield from iter_lines(stream, source=str(path))


def encode(adv: Advertisement) -> bytes:
    """One trace line (without the newline)."""
    return _encoder.encode(adv)


def write_trace(path: Path, advertisements: Iterable[Advertisement]) -> int:
    """Write ``advertisements`` as a trace file; returns how many were written."""
    count = 0
    with path.open("wb") as out:
        for adv in advertisements:
            out.write(_encoder.encode(adv))
            out.write(b"\n")
            count += 1
    return count
