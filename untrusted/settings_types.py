"""Settings files (TOML) validated with the types their values are written in.

Why: TOML, like JSON, says what type each value is, and in lax mode pydantic took
``port = "8080"`` as 8080, ``enabled = "yes"`` as true and ``port = 8080.0`` as 8080, so a store
owner's stray quotes loaded silently. pydantic's strict JSON mode refuses those yet still reads
text as a path, a time or a choice (its strict Python mode refuses those too), so a file's data
is validated as JSON text. The hub's config and the shop's both read their files this way."""

from __future__ import annotations

import json
import re
from datetime import date, time
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

#: The error pydantic's strict mode gives a setting that takes a number or true/false and was
#: given something else, and what such a setting takes, in a store owner's words.
WANTED = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false"}


def validate_strictly(model: type[M], data: Any) -> M:
    """``data`` (a parsed TOML table) as ``model``; raises pydantic's ``ValidationError``,
    whose number and true/false errors :func:`wrong_type` explains."""
    return model.model_validate_json(as_json(data), strict=True)


def as_json(data: Any) -> str:
    """The file's ``data`` as JSON text. TOML's times and dates become their ISO text, as JSON
    writes them (so a date given for a text setting is read as its text); NaN and infinity
    stay numbers, for the checks that name them."""
    return json.dumps(data, default=_iso)


def _iso(value: date | time) -> str:
    """A TOML date, date-time or time (tomllib gives no other type JSON lacks) as ISO text."""
    return value.isoformat()


def wrong_type(error_type: str, found: Any) -> str | None:
    """What a number or true/false setting was given instead, in the file's own spelling (a
    value in quotes is text to TOML, however much it looks like a number); None for an error
    of another kind."""
    wanted = WANTED.get(error_type)
    if wanted is None:
        return None
    if isinstance(found, str):
        text = json.dumps(found, ensure_ascii=False)
        meant = _meant(error_type, found)
        if meant is None:
            return f"expected {wanted}, found the text {text}"
        such = "" if error_type == "bool_type" else f" such as {meant}"
        return f"expected {wanted}{such}, found the text {text}; remove the quotes"
    if isinstance(found, bool):
        return f"expected {wanted}, found {str(found).lower()}"
    if isinstance(found, float) and found.is_integer():
        return f"expected {wanted}, found {found!r}; write {int(found)}"
    if isinstance(found, list | dict):
        return f"expected {wanted}, found {'a list' if isinstance(found, list) else 'a table'}"
    return f"expected {wanted}, found {found!r}"


def _meant(error_type: str, text: str) -> str | None:
    """The value ``text`` spells when it is one of the kind wanted (as TOML writes it), else
    None."""
    text = text.strip()
    if error_type == "bool_type":
        return text.lower() if text.lower() in ("true", "false") else None
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return str(int(text))
    if error_type == "float_type" and re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)"
                                                   r"([eE][+-]?[0-9]+)?", text):
        return text
    return None
