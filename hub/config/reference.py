"""The configuration reference rendered from the models themselves, so the README's table of
settings can never drift from the code (a test compares them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from hub.config import HubConfig


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return ""
    if field.default is PydanticUndefined:
        return "required"
    value = field.default
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "unset"
    return f"`{json.dumps(value, default=str)}`"


def render() -> str:
    """Markdown: one table per section of ``hub.toml`` and per table nested in it, so every
    setting a store can write is listed (``[beacons.presence]``, each ``[[...scanners]]``, each
    kind of ``[voice.engine]``)."""
    out: list[str] = []
    for name, section in HubConfig.model_fields.items():
        for model in _models(section.annotation):
            _table(out, f"[{name}]", section.description or "", model)
    return "\n".join(out).rstrip() + "\n"


def _table(out: list[str], header: str, about: str, model: type[BaseModel]) -> None:
    variant = _variant(model)
    out.append(f"### `{header}`{variant}\n\n{about}\n")
    out.append("| setting | default | meaning |\n|---|---|---|")
    nested = []
    for key, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{key}` | {_default(field)} | {description} |")
        for sub in _models(field.annotation):
            nested.append((key, field, sub))
    out.append("")
    for key, field, sub in nested:
        inner = header.strip("[]")
        array = get_origin(field.annotation) is list
        name = f"[[{inner}.{key}]]" if array else f"[{inner}.{key}]"
        _table(out, name, field.description or "", sub)


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field holds: itself, the items of a list, each member of a union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models(arg)]


def _variant(model: type[BaseModel]) -> str:
    """For one kind of a tagged union (``type = "vosk"``), the tag that selects it."""
    tag = model.model_fields.get("type")
    if tag is None or get_origin(tag.annotation) is not Literal:
        return ""
    return f" with `type = {json.dumps(get_args(tag.annotation)[0])}`"


START, END = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"


def update_readme(path: Path) -> None:
    """Replace the configuration section of the README at ``path`` with the current reference."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + START + render() + END + tail, encoding="utf-8")


if __name__ == "__main__":
    update_readme(Path(sys.argv[1]))
