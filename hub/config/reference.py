"""The configuration reference rendered from the models themselves, so the README's table of
settings can never drift from the code (a test compares them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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
    """Markdown: one table per section of ``hub.toml``."""
    out: list[str] = []
    for name, section in HubConfig.model_fields.items():
        model = section.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        out.append(f"### `[{name}]`\n\n{section.description}\n")
        out.append("| setting | default | meaning |\n|---|---|---|")
        for key, field in model.model_fields.items():
            description = (field.description or "").replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{key}` | {_default(field)} | {description} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


START, END = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"


def update_readme(path: Path) -> None:
    """Replace the configuration section of the README at ``path`` with the current reference."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + START + render() + END + tail, encoding="utf-8")


if __name__ == "__main__":
    update_readme(Path(sys.argv[1]))
