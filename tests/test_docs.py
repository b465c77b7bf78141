"""Docs are part of the feature: the README's configuration reference matches the models."""

from __future__ import annotations

from pathlib import Path

from hub.config.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_reference_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- config-reference:start -->\n") + len(
        "<!-- config-reference:start -->\n")
    end = readme.index("<!-- config-reference:end -->")
    assert readme[start:end] == render(), (
        "README.md's configuration section is stale: replace it with the output of "
        "'retail-hub config reference'"
    )


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()
