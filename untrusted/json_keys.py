"""JSON objects that give one key twice, refused instead of read as the last one.

Python's json (and msgspec) keep the last of two equal keys in one object without a word, so
``{"id": "a", "id": "b"}`` (a line copied and half edited by hand) silently means something else
than the file seems to say, and ``{"qty": 1, "qty": 100}`` means one thing to a reader that
takes the first (a proxy, another back end) and another to this one. Every reader of members,
traces, catalogues, voice eval files, model provenance, HTTP bodies, WebSocket commands and
sync envelopes goes through these."""

from __future__ import annotations

import json
import re
from typing import Any


class DuplicateKeyError(ValueError):
    """A JSON object that gives one key twice. ``line`` is where it is given again, when the
    reader knows the whole text (a JSON Lines reader has its own line number)."""

    def __init__(self, key: str, line: int | None = None) -> None:
        shown = json.dumps(key, ensure_ascii=False)
        super().__init__(f"the key {shown} appears twice in one object")
        self.key = key
        self.line = line

    def at(self, source: str) -> str:
        """The message as every reader words a place: ``members.json:3: the key ...``."""
        return f"{source}:{self.line}: {self}" if self.line else f"{source}: {self}"


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for every JSON file read: the object as a dict, or DuplicateKeyError
    naming the first key given twice. Called once per object, so a good file costs a dict."""
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return found


#: What a number Python refuses to read is called (its own message advises a Python call).
_TOO_MANY_DIGITS = "a number of more than 4300 digits, more than any value here can need"


def loads_unique(text: str | bytes) -> Any:
    """``json.loads`` with :func:`unique_keys`; its DuplicateKeyError carries the line. A number
    Python refuses to read (over 4300 digits) is a JSONDecodeError like other malformed JSON:
    as the bare ValueError json raises, it went past every reader's handling as a traceback.
    Bytes are decoded as ``json.loads`` decodes them (UTF-8, a byte-order mark or UTF-16/32
    told apart); UnicodeDecodeError when they are none of those."""
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKeyError as exc:
        raise DuplicateKeyError(exc.key, _line_of_repeat(text, exc.key)) from None
    except json.JSONDecodeError:
        raise
    except ValueError:
        long_number = re.search(r"\d{4301,}", text)
        at = long_number.start() if long_number else 0
        raise json.JSONDecodeError(_TOO_MANY_DIGITS, text, at) from None


#: Enough of JSON to tell keys from values: a string (escapes and all), a bracket, a colon.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[][{}:]')


def _line_of_repeat(text: str, key: str) -> int | None:
    """The line where ``key`` is first given again in one object of ``text``. Why a second pass:
    the hook is told an object's keys but not where they stand; it runs for a refused file only,
    and the JSON up to there is valid (the hook fired), so strings and brackets pair up."""
    given: list[bool] = []  # per open object or list: whether it has given the key yet
    string: re.Match[str] | None = None  # the last string: a key when a colon follows
    for token in _TOKEN.finditer(text):
        mark = token.group()
        if mark in ("{", "["):
            given.append(False)
        elif mark in ("}", "]"):
            given.pop()
        elif mark != ":":
            string = token
        elif string is not None and json.loads(string.group()) == key:
            if given[-1]:
                return text.count("\n", 0, string.start()) + 1
            given[-1] = True
    return None


def check_unique_keys(raw: str | bytes) -> None:
    """DuplicateKeyError (with its line) when JSON another parser already read (msgspec, which
    keeps the last of two keys) gives a key twice in one object. The exact check (json with the
    shared hook) costs several times msgspec's decoding, so it runs only where
    :func:`may_repeat_a_key` cannot rule a repeat out. Being exact, it may also raise what
    :func:`loads_unique` raises for JSON that msgspec took and Python's json does not: a number
    of over 4300 digits (JSONDecodeError), nesting past Python's recursion limit
    (RecursionError)."""
    if may_repeat_a_key(raw):
        loads_unique(raw)


def may_repeat_a_key(raw: str | bytes) -> bool:
    """Whether JSON that decoded might give a key twice in one object. With no backslash in
    it, every quote opens or closes a string, and where no string repeats, no key can: one
    split (about 1.5 us for a trace line or an envelope) rules out most messages; one whose
    strings repeat (a value equal to a key, a list of objects) costs the exact check."""
    data = raw if isinstance(raw, bytes) else raw.encode()
    if b"\\" in data:
        return True
    strings = data.split(b'"')[1::2]
    return len(set(strings)) < len(strings)
