"""`retail-hub doctor`: real checks on this machine, each failure with a fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hub.config import HubConfig
from hub.doctor import check_database, check_disk, run_checks
from hub.services import build_services

ROOT = Path(__file__).resolve().parents[2]


def test_database_states(make_config) -> None:
    config: HubConfig = make_config()
    assert check_database(config)[0].status == "warn"
    build_services(config, with_features=False).close()
    assert check_database(config)[0].status == "ok"
    data = bytearray(config.store.database.read_bytes())
    data[5000:9000] = b"\xa5" * 4000
    config.store.database.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        config.store.database.with_name(config.store.database.name + side).unlink(missing_ok=True)
    finding = check_database(config)[0]
    assert finding.status == "fail" and "restore" in (finding.fix or "")


def test_every_failure_has_a_fix(make_config) -> None:
    findings = run_checks(make_config())
    assert {f.check for f in findings} >= {"disk", "database", "clock", "bluetooth"}
    assert all(f.fix for f in findings if f.status != "ok")
    assert check_disk(make_config())[0].status in ("ok", "fail")


def test_broken_check_is_reported_not_raised(make_config) -> None:
    def check_exploding(_config: HubConfig) -> list:
        raise OSError("sensor unplugged")

    findings = run_checks(make_config(), [check_exploding])
    assert findings[0].check == "exploding" and "sensor unplugged" in findings[0].detail


def test_doctor_command_json(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[store]\nid = "doc"\nname = "Doc"\ndatabase = "hub.db"\n')
    result = subprocess.run([sys.executable, "-m", "hub.cli", "doctor", "--json", "--config",
                             str(config)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    findings = json.loads(result.stdout)
    failed = any(f["status"] == "fail" for f in findings)
    assert result.returncode == (1 if failed else 0)
    assert {"check", "status", "detail", "fix"} <= set(findings[0])
