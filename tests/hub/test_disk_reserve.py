"""The disk reserve (hub/disk_reserve.py): a hub whose disk filled up still starts.

Why: on a full SD card SQLite could not even open the database (no room for its WAL files), so
`retail-hub run` ended "cannot start the hub" and systemd restarted it every 5 s: kiosks, staff
page and arrival reminders were gone until someone freed space by hand."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from hub.disk_reserve import DiskReserve

#: Run inside a user and mount namespace (`unshare -rm`, no root needed): a small tmpfs is a real
#: filesystem that really fills, and the real `retail-hub run` is started on it twice.
ON_A_SMALL_DISK = textwrap.dedent('''
    import errno, json, os, signal, subprocess, sys, urllib.request
    folder, hub = sys.argv[1], sys.argv[2]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", folder], check=True)
    config = os.path.join(folder, "hub.toml")
    with open(os.path.join(folder, "staff-token"), "w") as f:
        f.write("reserve-test-staff-token\\n")
    with open(config, "w") as f:
        f.write("""
    [store]
    id = "full-disk"
    name = "Full disk"
    database = "hub.db"
    images_dir = "images"
    [web]
    port = 0
    staff_token_file = "staff-token"
    [mqtt]
    enabled = false
    [voice]
    enabled = false
    [vision]
    enabled = false
    """)

    def run():
        hub_process = subprocess.Popen([hub, "run", "--config", config], text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = hub_process.stdout.readline()
        seen = {"started": "serving at" in line}
        if seen["started"]:
            url = line.split("serving at ")[1].strip()
            with urllib.request.urlopen(url + "/healthz", timeout=30) as answer:
                seen["healthz"] = answer.status
            with urllib.request.urlopen(url + "/api/products?q=milk", timeout=30) as answer:
                seen["search"] = answer.status
            hub_process.send_signal(signal.SIGINT)
        seen["stderr"] = hub_process.communicate(timeout=60)[1]
        reserve = os.path.join(folder, "hub.db.reserve")
        seen["reserve_bytes"] = (os.stat(reserve).st_blocks * 512
                                 if os.path.exists(reserve) else None)
        return seen

    def fill(name):
        with open(os.path.join(folder, name), "wb", buffering=0) as f:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        f.write(b"x" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc

    first = run()
    fill("filler")
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    second = run()
    fill("filler-2")
    print(json.dumps({"first": first, "free_when_full": free, "second": second, "third": run()}))
''')


def test_a_hub_whose_disk_filled_up_starts_on_its_reserve(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    hub = Path(sys.executable).with_name("retail-hub")
    result = subprocess.run(["unshare", "-rm", sys.executable, "-c", ON_A_SMALL_DISK,
                             str(folder), str(hub)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    first, second = seen["first"], seen["second"]
    assert (first["started"], first["healthz"], first["search"]) == (True, 200, 200)
    assert first["reserve_bytes"] >= 16 * 1024 * 1024, "allocated, not a sparse file"
    assert seen["free_when_full"] == 0
    assert second["started"], second["stderr"]
    assert (second["healthz"], second["search"]) == (200, 200)
    assert "released the hub's 16 MiB reserve to start" in second["stderr"]
    assert second["reserve_bytes"] is None, "not made again on a disk without room"
    # full again with the reserve spent: the start fails, and says the disk is full (SQLite's
    # "disk I/O error" had sent staff to replace a card that only needed room)
    third = seen["third"]
    assert not third["started"]
    assert "the hub's storage is full" in third["stderr"], third["stderr"]


def test_the_reserve_is_kept_while_there_is_room_and_none_is_made_when_off(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    reserve = DiskReserve(database, 1)
    reserve.keep()
    assert reserve.path.stat().st_blocks * 512 >= 1024 * 1024
    assert shutil.disk_usage(tmp_path).free > 8 * 1024 * 1024
    assert reserve.release_if_full() is False and reserve.path.exists()
    off = DiskReserve(tmp_path / "other.db", 0)
    off.keep()
    assert not off.path.exists()
    DiskReserve(database, 0).keep()
    assert not reserve.path.exists(), "turned off: the old reserve is given back"
    assert not list(tmp_path.glob("*.part"))
