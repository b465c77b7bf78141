"""The retail-hub CLI on a real database: import, move stock, place and progress orders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.hub_process import write_hub_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path):
    config = write_hub_config(tmp_path, 0, store_id="cli-test")

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "hub.cli", *args, "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=120)
        if ok:
            assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result

    return run


def test_catalog_stock_and_orders(cli, tmp_path: Path) -> None:
    catalog = tmp_path / "c.csv"
    catalog.write_text("sku,name,price,shelf,stock\nMILK,Milk,12,C1,10\n,No sku,1,C1,1\n")
    result = cli("catalog", "import", str(catalog), ok=False)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["added"] == 1 and report["rejected"][0]["row"] == 3

    moved = json.loads(cli("stock", "move", "MILK", "3", "sale", "--ref", "r-1").stdout)
    assert moved["stock"]["on_hand"] == 7
    again = json.loads(cli("stock", "move", "MILK", "3", "sale", "--ref", "r-1").stdout)
    assert again["duplicate"] is True

    placed = json.loads(cli("orders", "place", "A1", "MILK:2", "--member", "m1").stdout)
    assert placed["state"] == "accepted"
    assert json.loads(cli("orders", "set", "A1", "ready").stdout)["state"] == "ready"
    listing = json.loads(cli("orders", "list", "--state", "ready").stdout)
    assert [o["id"] for o in listing] == ["A1"]
    assert json.loads(cli("stock", "show", "MILK").stdout)["available"] == 5
    # a negative change typed as it reads (it was taken for an unknown option, "-1")
    counted = json.loads(cli("stock", "move", "MILK", "-1", "adjustment").stdout)
    assert counted["stock"]["on_hand"] == 6


def test_cli_errors_are_messages(cli) -> None:
    result = cli("stock", "move", "NOPE", "1", "receipt", ok=False)
    assert result.returncode == 1 and "no product with SKU 'NOPE'" in result.stderr
    result = cli("orders", "set", "A9", "ready", ok=False)
    assert result.returncode == 1 and "no order" in result.stderr
    result = cli("orders", "place", "A1", "MILK", ok=False)
    assert result.returncode == 2 and "SKU:QTY" in result.stderr
    result = cli("stock", "move", "MILK", "1", "theft", ok=False)
    assert result.returncode == 2


def test_an_order_placed_and_rejected_exits_non_zero(cli) -> None:
    """Why: 'orders place O3 NOPE:1' exited 0 with an order in state rejected, which a script
    could not tell from success. The order is still printed, and said on stderr."""
    result = cli("orders", "place", "O3", "NOPE:1", ok=False)
    assert result.returncode == 1
    assert json.loads(result.stdout)["state"] == "rejected"
    assert "error: order O3 was rejected: " in result.stderr


def test_a_missing_staff_token_file_is_named_not_a_traceback(cli, tmp_path: Path) -> None:
    """Why: 'catalog import' and 'stock show' ended with a FileNotFoundError traceback where
    'run' named the missing file."""
    (tmp_path / "staff-token").unlink()
    for args in (("catalog", "import", str(tmp_path / "c.csv")), ("stock", "show", "MILK")):
        result = cli(*args, ok=False)
        assert result.returncode == 2, args
        assert "staff token: [Errno 2] No such file or directory" in result.stderr


def test_what_the_commands_write_is_for_their_user_only(tmp_path: Path) -> None:
    """Why: a backup run from a shell with umask 022 was a 0644 file in a 0755 folder, and the
    database it copies holds every member's beacon key; the kiosk's auto-login user could read
    it."""
    config = write_hub_config(tmp_path, 0, store_id="umask-test")
    catalog = tmp_path / "c.csv"
    catalog.write_text("sku,name,price,shelf,stock\nMILK,Milk,12,C1,10\n")

    def run(*args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "hub.cli", *args, "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=120,
                                preexec_fn=lambda: os.umask(0o022))
        assert result.returncode == 0, result.stderr

    run("catalog", "import", str(catalog))
    run("backup", "--to", str(tmp_path / "backups"))
    written = [tmp_path / "hub.db", tmp_path / "backups", *(tmp_path / "backups").iterdir()]
    assert sorted(p.suffix for p in written) == ["", ".db", ".db", ".lock"]  # and the folder's lock
    for path in written:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
