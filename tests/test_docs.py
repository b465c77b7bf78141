"""Docs are part of the feature: the README's configuration reference matches the models, and the
files the Pi install copies exist."""

from __future__ import annotations

import re
import subprocess
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


def test_every_repository_file_the_pi_install_names_exists() -> None:
    """install-pi.md copies files out of the clone at /opt/retail-hub; each must be there, and
    the kiosk script must be valid shell (it pointed at a unit that could not run Chromium)."""
    text = (ROOT / "docs" / "install-pi.md").read_text(encoding="utf-8")
    named = set(re.findall(r"/opt/retail-hub/([\w./-]+\w)", text))
    assert "deploy/kiosk/retail-hub-kiosk.desktop" in named
    for rel in named:
        if "*" not in rel and not rel.startswith(".venv"):
            assert (ROOT / rel).exists(), rel
    desktop = (ROOT / "deploy" / "kiosk" / "retail-hub-kiosk.desktop").read_text()
    script = re.search(r"^Exec=/opt/retail-hub/(\S+)$", desktop, re.M)
    assert script is not None and (ROOT / script.group(1)).stat().st_mode & 0o111
    subprocess.run(["sh", "-n", str(ROOT / script.group(1))], check=True)
