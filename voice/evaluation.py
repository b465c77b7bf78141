"""Measuring voice search on labelled clips: what ``retail-hub voice eval`` prints and the
benchmark reports.

Every clip goes through :meth:`VoiceSearch.answer_wav`, the path the HTTP endpoint uses, so the
figures are the product's, not a lab setup's. A clip labelled ``"sku": null`` is a question about
something the store does not sell; answering it with any product is a false accept.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from untrusted.files import read_at_most
from untrusted.json_keys import DuplicateKeyError, loads_unique
from voice.audio import AudioError, AudioLimits, read_wav
from voice.matcher import CatalogEntry
from voice.search import VoiceAnswer, VoiceSearch

MAX_CATALOG_BYTES = 20 * 1024 * 1024
#: The largest labels.jsonl read: 100 000 clips at about 60 bytes a line is 6 MB.
MAX_LABELS_BYTES = 16 * 1024 * 1024
#: The largest clip read: the hub's largest audio upload by default (web.max_upload_bytes),
#: which holds a minute (voice.max_seconds at most) of 16-bit stereo at 48 kHz.
MAX_CLIP_BYTES = 12 * 1024 * 1024
#: Longest name or alias, in characters: what the hub's catalogue import accepts.
MAX_NAME_CHARS = 200


class EvalInputError(ValueError):
    """A catalogue file or clips folder that cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Clip:
    """One labelled question: a WAV file and the SKU asked for (None: not sold here)."""

    path: Path
    sku: str | None


def load_catalog(path: Path) -> list[CatalogEntry]:
    """Read a catalogue JSON: a list (or ``{"products": [...]}``) of ``{sku, names, aliases}``."""
    raw = _read(path, MAX_CATALOG_BYTES)
    try:
        data = loads_unique(raw.decode("utf-8-sig"))
    except DuplicateKeyError as exc:
        raise EvalInputError(f"{path} line {exc.line}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path} is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise EvalInputError(f"{path}: JSON nested too deeply to be a catalogue") from None
    if isinstance(data, dict) and isinstance(data.get("products"), list):
        data = data["products"]
    if not isinstance(data, list):
        raise EvalInputError(f'{path}: expected a list of {{"sku", "names", "aliases"}}')
    if not data:
        raise EvalInputError(f"{path} lists no products")
    entries = [_entry(item, f"{path} product {n}") for n, item in enumerate(data, start=1)]
    first: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        # one SKU under two names would answer both with it, as if they were one product
        if (seen := first.setdefault(entry.sku, number)) != number:
            raise EvalInputError(
                f"{path} product {number}: SKU {entry.sku} is given twice (product {seen} too)"
            )
    return entries


def _entry(item: Any, where: str) -> CatalogEntry:
    """One product. Why lenient where it is harmless: the contract shows aliases only as
    ``{...}``, and catalogues exported from shop systems leave a language's name empty or give one
    alias as a plain string; reading those as "no name" and a one-item list evaluates the rest
    instead of stopping. Anything else malformed is an error that names the product."""
    sku = _sku(item.get("sku") if isinstance(item, dict) else None)
    if sku is None:
        raise EvalInputError(f"{where}: needs a non-empty string 'sku'")
    names = item.get("names")
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in names.items()
    ):
        raise EvalInputError(f"{where} ({sku}): 'names' must map language codes to text")
    given = {k: v.strip() for k, v in names.items() if v and v.strip()}
    if not given:
        raise EvalInputError(f"{where} ({sku}): 'names' has no name in any language")
    _check_lengths(given.values(), f"{where} ({sku})")
    aliases = item.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise EvalInputError(f"{where} ({sku}): 'aliases' must map languages to lists")
    lists: dict[str, list[str]] = {}
    for lang, value in aliases.items():
        value = [value] if isinstance(value, str) else (value or [])
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise EvalInputError(f"{where} ({sku}): 'aliases' must map languages to lists")
        lists[lang] = [a.strip() for a in value if a.strip()]
        _check_lengths(lists[lang], f"{where} ({sku})")
    return CatalogEntry.tagged(sku, given, lists)


def _check_lengths(texts: Iterable[str], where: str) -> None:
    """Names and aliases as long as the hub's catalogue import allows: a 2000-word name made
    the grammar builder recurse past Python's limit."""
    for text in texts:
        if len(text) > MAX_NAME_CHARS:
            raise EvalInputError(
                f"{where}: a name or alias of {len(text)} characters; at most {MAX_NAME_CHARS}"
            )


def _read(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, or EvalInputError naming it: unreadable, or more than ``limit``.

    Why not by ``stat()``: a device, FIFO or /proc file reports size 0, and a 5 GB file was read
    whole on the store's Pi before anything was said. At most one byte past the limit is read."""
    try:
        data = read_at_most(path, limit)
    except FileNotFoundError:
        raise EvalInputError(f"{path}: file not found") from None
    except OSError as exc:
        raise EvalInputError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    if data is None:
        raise EvalInputError(f"{path} is larger than {limit >> 20} MiB")
    return data


def _sku(value: object) -> str | None:
    """A SKU as text: a non-empty string, or an integer (catalogues exported with numeric ids)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def load_clips(folder: Path, skus: Collection[str] | None = None) -> list[Clip]:
    """The clips listed in ``folder/labels.jsonl`` (lines ``{"file", "sku"}``).

    ``sku`` must be present on every line (null for an off-catalogue question) and, given the
    catalogue's ``skus``, one of them: a misspelt key or a SKU from another catalogue would
    otherwise count silently as a false accept or a miss."""
    labels = folder / "labels.jsonl"
    if not labels.is_file():
        raise EvalInputError(f'{labels} not found; list each clip as {{"file", "sku"}}')
    try:
        text = _read(labels, MAX_LABELS_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalInputError(
            f"{labels} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    clips = []
    listed: dict[Path, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = loads_unique(line)
        except DuplicateKeyError as exc:  # a second "sku" would score it against another product
            raise EvalInputError(f"{labels} line {number}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{labels} line {number}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise EvalInputError(f"{labels} line {number}: JSON nested too deeply") from None
        if not isinstance(row, dict) or not isinstance(row.get("file"), str):
            raise EvalInputError(f"{labels} line {number}: needs a 'file' name")
        if "sku" not in row:
            raise EvalInputError(
                f"{labels} line {number}: needs 'sku' (null for a question about something the "
                "store does not sell)"
            )
        sku = _sku(row["sku"])
        if sku is None and row["sku"] is not None:
            raise EvalInputError(
                f"{labels} line {number}: 'sku' must be a product's SKU (a non-empty string) "
                "or null"
            )
        if sku is not None and skus is not None and sku not in skus:
            raise EvalInputError(f"{labels} line {number}: sku {sku!r} is not in the catalogue")
        # By the name's own parts, so clips linked into the folder from a shared corpus are read
        # while a name that climbs out of it is refused.
        name = PurePosixPath(row["file"].replace("\\", "/"))
        path = folder / name
        if name.is_absolute() or ".." in name.parts or not path.is_file():
            raise EvalInputError(f"{labels} line {number}: {row['file']} is not a file in {folder}")
        if path in listed:  # counted twice, it would weigh that question double
            raise EvalInputError(
                f"{labels} line {number}: {row['file']} is listed already (line {listed[path]})"
            )
        listed[path] = number
        clips.append(Clip(path, sku))
    if not clips:
        raise EvalInputError(f"{labels} lists no clips")
    return clips


@dataclass
class Tally:
    """Running counts for one engine and condition."""

    n: int = 0
    top1: int = 0
    top3: int = 0
    off: int = 0
    false_accept: int = 0
    audio_s: float = 0.0
    decode_s: float = 0.0

    def __post_init__(self) -> None:
        self.ms: list[float] = []

    def add(self, answer: VoiceAnswer, sku: str | None, audio_s: float, spent_s: float) -> None:
        self.audio_s += audio_s
        self.decode_s += spent_s
        self.ms.append(spent_s * 1000.0)
        skus = [m.sku for m in answer.results]
        if sku is None:
            self.off += 1
            self.false_accept += answer.in_store
        else:
            self.n += 1
            self.top1 += bool(skus) and skus[0] == sku
            self.top3 += sku in skus[:3]

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n + self.off,
            "top1": round(self.top1 / self.n, 4) if self.n else None,
            "top3": round(self.top3 / self.n, 4) if self.n else None,
            "false_accept": round(self.false_accept / self.off, 4) if self.off else None,
            "rtf": round(self.decode_s / self.audio_s, 4) if self.audio_s else None,
            "ms_p50": round(statistics.median(self.ms), 1) if self.ms else None,
            "rss_mb": round(peak_rss_mb(), 1),
        }


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its live child processes (pocketsphinx
    decodes in one), models included, in MiB: what voice search costs a hub."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return own + sum(children_kib("VmHWM")) / 1024.0


def children_kib(field: str) -> list[int]:
    """``field`` (VmRSS, VmHWM) of each live child of this process, in KiB, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent != os.getpid():
                continue
            lines = (stat.parent / "status").read_text().splitlines()
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
            continue
        found += [int(line.split()[1]) for line in lines if line.startswith(f"{field}:")]
    return found


def evaluate(search: VoiceSearch, clips: Iterable[Clip], limits: AudioLimits) -> dict[str, Any]:
    """Run every clip through the API's search path, under the API's ``limits``; the contract's
    figures. Every clip is read and checked first, so an unreadable one stops the run before
    any decoding, named in the error; each is read again to be decoded, so ``rss_mb`` is the
    product's memory, not the size of the clip set."""
    tally = Tally()
    checked = [(clip, _seconds(clip, limits)) for clip in clips]
    for clip, seconds in checked:
        data = _read(clip.path, MAX_CLIP_BYTES)
        started = time.perf_counter()
        answer = search.answer_wav(data, limits)
        tally.add(answer, clip.sku, seconds, time.perf_counter() - started)
    return tally.summary()


def _seconds(clip: Clip, limits: AudioLimits) -> float:
    try:
        return read_wav(_read(clip.path, MAX_CLIP_BYTES), limits).seconds
    except AudioError as exc:
        raise EvalInputError(f"{clip.path}: {exc}") from None
