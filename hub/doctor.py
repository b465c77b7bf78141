"""``retail-hub doctor``: checks the things a store hub needs from its machine, each failure with
the fix. Features add their own checks to ``CHECKS`` (models, broker, Bluetooth)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hub.config import HubConfig

MIN_FREE_BYTES = 1024**3
MIN_FREE_FRACTION = 0.05


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: ``status`` is ok, warn or fail; ``fix`` says what to do."""

    check: str
    status: str
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


Check = Callable[[HubConfig], list[Finding]]


def check_disk(config: HubConfig) -> list[Finding]:
    folder = config.store.database.parent
    while not folder.exists():
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    free_gib = usage.free / 1024**3
    detail = f"{free_gib:.1f} GiB free of {usage.total / 1024**3:.1f} GiB at {folder}"
    if usage.free < MIN_FREE_BYTES or usage.free / usage.total < MIN_FREE_FRACTION:
        return [Finding("disk", "fail", detail,
                        "free space on the SD card: delete old backups or logs "
                        "(journalctl --vacuum-size=100M), or move the database to a bigger disk")]
    return [Finding("disk", "ok", detail)]


def check_database(config: HubConfig) -> list[Finding]:
    path = config.store.database
    if not path.exists():
        return [Finding("database", "warn", f"{path} does not exist yet",
                        "it is created on the first 'retail-hub run'")]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [Finding("database", "fail", f"{path}: {exc}",
                        "restore the latest backup with 'retail-hub restore'")]
    if result != "ok":
        return [Finding("database", "fail", f"{path}: integrity check says {result}",
                        "stop the hub and restore the latest backup with 'retail-hub restore'")]
    if mode != "wal":
        return [Finding("database", "warn", f"{path}: journal mode {mode}",
                        "start the hub once; it switches the database to WAL")]
    return [Finding("database", "ok", f"{path}: integrity ok, WAL")]


def check_clock(_config: HubConfig) -> list[Finding]:
    """Reservations, tokens and presence all need the right time; a Pi has no battery clock."""
    if shutil.which("timedatectl"):
        result = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                                capture_output=True, text=True, timeout=10)
        if result.returncode == 0 and result.stdout.strip() in ("yes", "no"):
            if result.stdout.strip() == "yes":
                return [Finding("clock", "ok", "synchronised by NTP")]
            return [Finding("clock", "fail", "the clock is not synchronised",
                            "enable time sync: sudo timedatectl set-ntp true (and allow NTP, "
                            "UDP 123, through the store's firewall)")]
    if Path("/run/systemd/timesync/synchronized").exists():
        return [Finding("clock", "ok", "synchronised by systemd-timesyncd")]
    if shutil.which("chronyc"):
        result = subprocess.run(["chronyc", "tracking"], capture_output=True, text=True,
                                timeout=10)
        if "Leap status     : Normal" in result.stdout:
            return [Finding("clock", "ok", "synchronised by chrony")]
    return [Finding("clock", "warn", "cannot tell whether the clock is synchronised",
                    "install systemd-timesyncd or chrony so shopper tokens and pickup windows "
                    "use the right time")]


def check_bluetooth(config: HubConfig) -> list[Finding]:
    """Adapter present, BlueZ new enough for passive scanning, kernel new enough."""
    adapters = sorted(p.name for p in Path("/sys/class/bluetooth").glob("hci*"))
    findings = []
    if not adapters:
        findings.append(Finding("bluetooth", "fail", "no Bluetooth adapter found",
                                "plug in the USB Bluetooth adapter (the Pi's onboard UART adapter "
                                "drops advertisements under load) and check 'hciconfig -a'"))
    else:
        findings.append(Finding("bluetooth", "ok", f"adapters: {', '.join(adapters)}"))
    version = _bluez_version()
    if version is None:
        findings.append(Finding("bluez", "fail", "BlueZ (bluetoothd) is not installed",
                                "sudo apt-get install bluez"))
    elif version < (5, 56):
        findings.append(Finding("bluez", "warn", f"BlueZ {version[0]}.{version[1]}: no passive "
                                "scanning", "upgrade to BlueZ 5.56 or newer (Raspberry Pi OS "
                                "bookworm has it), or keep beacons.scan_mode active"))
    else:
        experimental = _bluetoothd_has_experimental()
        findings.append(Finding(
            "bluez", "ok" if experimental else "warn",
            f"BlueZ {version[0]}.{version[1]}"
            + ("" if experimental else "; bluetoothd runs without --experimental"),
            None if experimental else "passive scanning needs bluetoothd --experimental: add it "
            "to ExecStart in a drop-in for bluetooth.service",
        ))
    kernel = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])
    if kernel < (5, 10):
        findings.append(Finding("kernel", "warn", f"kernel {platform.release()}",
                                "passive scanning needs Linux 5.10 or newer"))
    return findings


def _bluez_version() -> tuple[int, int] | None:
    for binary in ("bluetoothd", "/usr/libexec/bluetooth/bluetoothd",
                   "/usr/lib/bluetooth/bluetoothd"):
        path = shutil.which(binary) or (binary if os.access(binary, os.X_OK) else None)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
            m = re.search(r"(\d+)\.(\d+)", out.stdout)
            if m:
                return int(m.group(1)), int(m.group(2))
    return None


def _bluetoothd_has_experimental() -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"bluetoothd"):
            return any(a in (b"-E", b"--experimental") for a in args)
    return False


#: Every check ``retail-hub doctor`` runs, in order; features append theirs.
CHECKS: list[Check] = [check_disk, check_database, check_clock, check_bluetooth]


def run_checks(config: HubConfig, checks: list[Check] | None = None) -> list[Finding]:
    findings = []
    for check in checks if checks is not None else CHECKS:
        try:
            findings.extend(check(config))
        except Exception as exc:  # noqa: BLE001 - a broken check is itself a finding
            findings.append(Finding(check.__name__.removeprefix("check_"), "fail",
                                    f"the check itself failed: {exc}", None))
    return findings
