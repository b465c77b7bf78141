"""The layering rule: beacons, vision, voice and sync never import hub or each other; untrusted
(reading the files they are handed) is theirs to share, so it imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["beacons", "vision", "voice", "sync"]
FORBIDDEN = {"hub", *PACKAGES}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_neither_hub_nor_siblings(package: str) -> None:
    offenders = {}
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    for path in files:
        bad = imported_top_levels(path) & (FORBIDDEN - {package})
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_untrusted_imports_no_package_of_the_product() -> None:
    files = sorted((ROOT / "untrusted").rglob("*.py"))
    assert files, "untrusted/ has no Python files"
    offenders = {str(p.relative_to(ROOT)): sorted(imported_top_levels(p) & FORBIDDEN)
                 for p in files if imported_top_levels(p) & FORBIDDEN}
    assert offenders == {}


def test_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom hub.db import Database\nimport vision.model as m\n")
    assert imported_top_levels(sample) == {"os", "hub", "vision"}
