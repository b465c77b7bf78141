"""`retail-hub demo` serves the demo store, prints its URL and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fixtures.hub_process import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_serves_and_stops(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--data", str(tmp_path), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output, output
        url = f"http://127.0.0.1:{port}/api/products?q=banana"
        with urllib.request.urlopen(url, timeout=10) as response:
            results = json.load(response)["results"]
        assert results[0]["name"] == "Banana"
        assert results[0]["stock"]["available"] > 0
        token = (tmp_path / "staff-token").read_text().strip()
        assert token not in output, "the staff token is never printed"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
