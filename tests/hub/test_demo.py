"""`retail-hub demo` runs the whole demo (mosquitto, the online shop, the hub with a simulated
store), prints its URLs, syncs with the shop, and stops everything cleanly on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from hub.demo.store import prepare_demo
from hub.services import build_services
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_demo_runs_the_store_the_shop_and_the_broker(tmp_path: Path) -> None:
    port, shop_port, broker_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--data", str(tmp_path), "--port", str(port),
         "--shop-port", str(shop_port), "--broker-port", str(broker_port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 180
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}/kiosk" in output, output
        assert f"http://127.0.0.1:{shop_port}/api/stores/demo-stockholm/stock" in output
        hub = f"http://127.0.0.1:{port}"
        results = get(f"{hub}/api/products?q=banana")["results"]
        assert results[0]["name"] == "Banana" and results[0]["stock"]["available"] > 0
        token = (tmp_path / "staff-token").read_text().strip()
        assert token not in output, "the staff token is never printed"
        ready = get(f"{hub}/api/orders?state=ready", token)["orders"]
        assert len(ready) == 6 and all(o["member_id"] for o in ready)
        assert get(f"{hub}/api/presence", token)["enabled"] is True
        # the simulated floor's shelf beacons are declared, so store health tracks them
        fleet = get(f"{hub}/api/staff/health", token)["beacons"]
        assert fleet["state"] == "ok" and len(fleet["beacons"]) == 3, fleet
        # The shop hears the store through the demo's broker and sees its stock.
        shop = f"http://127.0.0.1:{shop_port}"
        while time.monotonic() < deadline:
            view = get(f"{shop}/api/stores/demo-stockholm/stock")["stock"]
            if len(view) == 81:
                break
            time.sleep(0.5)
        banana = next(row for row in view if row["sku"] == results[0]["sku"])
        assert banana["available"] == results[0]["stock"]["available"]
        assert listening(broker_port)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    assert not listening(broker_port) and not listening(shop_port), "companions stopped"


def test_a_port_left_in_time_wait_by_a_stopped_demo_counts_as_free() -> None:
    """Why: `make demo` again within a minute of Ctrl-C said "port 18830 is in use" though
    nothing listened: the stopped broker's connections were in TIME_WAIT. A listening port is
    still in use."""
    from hub.cli.demo import _port_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not _port_free(port)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        time.sleep(0.05)
        client.close()
    assert _port_free(port)


def test_a_restarted_demo_counts_only_the_orders_still_ready(tmp_path: Path) -> None:
    """Why: after a restart the demo said "6 orders ready for pickup" and named them for the
    arrival reminders, though staff had collected some meanwhile."""
    first = prepare_demo(tmp_path, 0)
    assert len(first.ready_orders) >= 2
    collected = next(iter(first.ready_orders))
    services = build_services(first.config, with_features=False)
    try:
        services.orders.transition(collected, "collected", reason="picked up")
    finally:
        services.close()
    again = prepare_demo(tmp_path, 0)
    assert collected not in again.ready_orders
    assert set(again.ready_orders) == set(first.ready_orders) - {collected}
