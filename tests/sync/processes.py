"""The hub and the shop as real processes (``retail-hub run`` / ``retail-hub shop``), for the
tests that SIGKILL them."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.catalog import Catalog
from hub.clock import SystemClock
from hub.db import Database
from hub.inventory import Inventory
from hub.sync_link import audit_export
from sync.shop.audit import AuditReport, audit_store
from tests.fixtures.hub_process import start_service, write_hub_config
from tests.fixtures.ports import free_port

STAFF_TOKEN = "process-test-token-0123456789"  # what write_hub_config puts in the token file


def hub_toml(folder: Path, web_port: int, broker_port: int, store: str) -> Path:
    """A hub.toml with sync on (short intervals) and the other features off."""
    extra = (
        f"\n[mqtt]\nenabled = true\nport = {broker_port}\nack_timeout_s = 2.0\n"
        "snapshot_interval_s = 0.2\npoll_interval_s = 0.5\nbackoff_initial_s = 0.05\n"
        "backoff_max_s = 0.5\nkeepalive_s = 5\n"
        "\n[vision]\nenabled = false\n\n[voice]\nenabled = false\n\n[beacons]\nenabled = false\n"
    )
    return write_hub_config(folder, web_port, store, extra)


def shop_toml(folder: Path, broker_port: int) -> tuple[Path, int]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    path = folder / "shop.toml"
    path.write_text(
        f'database = "shop.db"\n\n[http]\nport = {port}\n\n[mqtt]\nport = {broker_port}\n'
        "backoff_initial_s = 0.05\nbackoff_max_s = 0.5\nkeepalive_s = 5\n\n"
        "[sync]\nack_interval_s = 0.02\nresend_after_s = 2.0\n", encoding="utf-8")
    return path, port


def start_shop(config: Path, port: int, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """Start ``retail-hub shop`` and wait until its /healthz answers."""
    return start_service(["shop", "--config", str(config)], config.parent / "shop.log",
                         f"http://127.0.0.1:{port}/healthz", timeout)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no goodbye, no flush, no will suppression."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def post(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def import_catalog(hub_db: Path, rows: list[tuple[int, dict[str, Any]]], images: Path) -> None:
    """Seed a hub database before its process starts, through the hub's own services."""
    db = Database(hub_db)
    db.migrate()
    try:
        clock = SystemClock()
        report = Catalog(db, clock, Inventory(db, clock), images).import_rows(rows, images)
        assert not report.rejected
    finally:
        db.close()


def audit_files(hub_db: Path, shop_db: Path, store: str) -> AuditReport:
    db = Database(hub_db)
    try:
        ledger, stock = audit_export(db)
    finally:
        db.close()
    return audit_store(shop_db, store, ledger, stock)


def wait_exact(hub_db: Path, shop_db: Path, store: str, timeout: float = 60.0) -> AuditReport:
    deadline = time.monotonic() + timeout
    while True:
        report = audit_files(hub_db, shop_db, store) if shop_db.exists() else None
        if report is not None and report.exact:
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"shop view never matched the ledger: {report}")
        time.sleep(0.2)



def get(url: str) -> Any:
    """GET ``url`` and return its JSON body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy (for tests that drive processes from
    plain threads); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return result
