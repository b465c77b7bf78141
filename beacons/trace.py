"""Reading and writing advertisement traces (JSON Lines, one ``Advertisement`` per line).

Decoding uses msgspec against the typed record, so a malformed line fails with the field and the
line number rather than a KeyError deep in the presence engine."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from beacons.advertisement import Advertisement
from beacons.errors import TraceError
from untrusted.json_keys import DuplicateKeyError, check_unique_keys

_decoder = msgspec.json.Decoder(Advertisement)
#: Received power a Bluetooth LE radio can report, in dBm (HCI reports -127..20).
RSSI_DBM = (-130, 30)
#: The times a trace may carry, in seconds: Unix time, or seconds from 0 (README, "Trace"). The
#: top is the year 2286: a larger t (1e18, 1e300) is a unit or encoding mistake, and at the end of
#: a trace it would move the engine's clock so far that every member "left".
T_RANGE_S = (0.0, 1e10)
#: The longest trace line read, in bytes. A real advertisement record is under 1 KiB; a file
#: without line breaks (a binary file, /dev/zero) is refused at this length instead of being
#: read whole into memory.
MAX_LINE_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_encoder = msgspec.json.Encoder()


def decode_line(
    line: bytes | str, *, source: str = "<trace>", number: int | None = None
) -> Advertisement:
    """Decode one trace line. Raises TraceError naming ``source:number`` and the bad field."""
    try:
        adv = _decoder.decode(line)
        check_unique_keys(line)
    except DuplicateKeyError as exc:
        raise TraceError(str(exc), source=source, line=number) from None
    except msgspec.ValidationError as exc:
        raise TraceError(f"not an advertisement record: {exc}", source=source, line=number) from exc
    except msgspec.DecodeError as exc:
        raise TraceError(_not_json(line, exc), source=source, line=number) from exc
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line); "
            "save the trace as UTF-8",
            source=source,
            line=number,
        ) from exc
    except RecursionError as exc:
        raise TraceError("JSON nested too deeply", source=source, line=number) from exc
    except json.JSONDecodeError as exc:  # the key check met a number Python will not read
        raise TraceError(exc.msg, source=source, line=number) from None
    if not T_RANGE_S[0] <= adv.t <= T_RANGE_S[1]:  # NaN fails this too
        raise TraceError(
            f"t must be Unix time in seconds (or seconds from 0), between {T_RANGE_S[0]:g} and "
            f"{T_RANGE_S[1]:g}, got {adv.t!r}",
            source=source,
            line=number,
        )
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


def _not_json(line: bytes | str, exc: msgspec.DecodeError) -> str:
    """Why a line did not parse. msgspec reports bytes that are not UTF-8 (a UTF-16 export, a
    binary file) as an "invalid character" at some byte, which says nothing about what to do;
    the check runs only for a line that already failed, so good lines pay nothing for it."""
    if isinstance(line, bytes):
        if b"\x00" in line or line.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "not UTF-8 text (NUL bytes: UTF-16 or a binary file); save the trace as UTF-8"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            return (
                f"not UTF-8 text ({bad.reason} at byte {bad.start + 1} of the line); "
                "save the trace as UTF-8"
            )
    return f"not valid JSON: {exc}"


def numbered_lines(stream: IO[bytes], *, source: str) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of a trace stream with their line numbers, for every trace reader
    (replay's and eval's alike). A byte-order mark before the first line (some Windows tools
    write one) is skipped; a line over MAX_LINE_BYTES raises TraceError naming it, after reading
    no more than that, so no input is read whole into memory."""
    limit = MAX_LINE_BYTES + 1
    lines = enumerate(iter(functools.partial(stream.readline, limit), b""), start=1)
    for number, line in lines:
        if number == 1:
            line = line.removeprefix(_BOM)
        if len(line) >= limit and not line.endswith(b"\n"):
            raise TraceError(
                f"line longer than {MAX_LINE_BYTES // 1024} KiB (a record is under 1 KiB): "
                "not a trace, or its line breaks are missing",
                source=source,
                line=number,
            )
        if line.strip():
            yield number, line


def iter_lines(stream: IO[bytes], *, source: str) -> Iterator[Advertisement]:
    """Decode a stream of trace lines, skipping blank lines; errors name ``source`` and the line."""
    for _, adv in numbered_advertisements(stream, source=source):
        yield adv


def numbered_advertisements(
    stream: IO[bytes], *, source: str
) -> Iterator[tuple[int, Advertisement]]:
    """``iter_lines`` with each advertisement's line number, for a warning that names the line
    it is about."""
    for number, line in numbered_lines(stream, source=source):
        yield number, decode_line(line, source=source, number=number)


def read_trace(path: Path) -> Iterator[Advertisement]:
    """Every advertisement of the trace file at ``path``, in file order."""
    for _, adv in read_numbered_trace(path):
        yield adv


def read_numbered_trace(path: Path) -> Iterator[tuple[int, Advertisement]]:
    """Every advertisement of the trace file at ``path`` with its line number, in file order."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise TraceError(f"cannot open trace: {exc.strerror}", source=str(path)) from exc
    with stream:
        yield from numbered_advertisements(stream, source=str(path))


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
