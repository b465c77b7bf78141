"""A disk that refuses writes (full, read-only) and a database file removed under the running hub:
each is said in words a person can act on, loses nothing already accepted, and mends itself or
is mended by a restore."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from hub.app import start_hub
from hub.backup import copy_database, restore
from hub.errors import Conflict
from hub.services import Services
from hub.storage import refuses_writes, storage_failure, write_whole
from tests.openapi_check import SpecClient

CORE_ONLY = {"mqtt": {"enabled": False}, "voice": {"enabled": False},
             "vision": {"enabled": False}}


def _room(svc: Services, extra_pages: int) -> None:
    """Let the database grow by only ``extra_pages`` pages on the writer's connection: SQLite
    then fails as on a full disk (SQLITE_FULL)."""
    conn = svc.db.conn().conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


async def test_a_full_disk_is_named_and_mends_when_space_returns(
    client: TestClient, stocked: Services, staff: dict[str, str]
) -> None:
    """Why: on a full SD card every change answered 500 "internal error; see the hub's log"
    (staff cannot see it) while /healthz said "ok"."""
    api = SpecClient(client, staff)
    await stocked.db.write(_room, stocked, 0)
    statuses = []
    for n in range(300):
        response, body = await api.call("POST", "/api/stock/movements", json_body={
            "sku": "OAT-1", "qty": 1, "reason": "receipt", "ref": f"full-{n}"})
        statuses.append(response.status)
        if response.status != 201:
            break
    assert response.status == 503, statuses
    assert body["error"]["code"] == "storage_full"
    assert body["error"]["message"].startswith("the hub's storage is full: nothing was saved")
    recorded = len(statuses) - 1
    assert stocked.inventory.stock("OAT-1").on_hand == 10 + recorded
    health = await client.get("/healthz")
    assert health.status == 503 and "storage is full" in (await health.json())["database"]
    _, staff_health = await api.call("GET", "/api/staff/health")
    assert "storage is full" in staff_health["disk"]["problem"]
    assert staff_health["disk"]["read_only"] is False

    await stocked.db.write(_room, stocked, 1000)  # space freed
    response, body = await api.call("POST", "/api/stock/movements", json_body={
        "sku": "OAT-1", "qty": 1, "reason": "receipt", "ref": f"full-{recorded}"})
    assert response.status == 201 and body["duplicate"] is False  # it had not been saved
    assert stocked.inventory.stock("OAT-1").on_hand == 10 + recorded + 1
    assert (await client.get("/healthz")).status == 200
    _, staff_health = await api.call("GET", "/api/staff/health")
    assert staff_health["disk"]["problem"] is None


def test_disk_failures_are_told_apart_from_bugs(tmp_path: Path) -> None:
    database = tmp_path / "ro.db"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as refused:
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    read_only = storage_failure(refused.value)
    assert read_only is not None and read_only.code == "storage_read_only"
    assert read_only.status == 503 and "read-only" in read_only.message
    full = storage_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert full is not None and full.code == "storage_full"
    assert storage_failure(sqlite3.OperationalError("no such table: x")) is None
    assert storage_failure(OSError(errno.ENOENT, "missing")) is None


def test_files_that_cannot_be_written_whole_leave_no_part_behind(tmp_path: Path) -> None:
    """Why: a photo or backup cut short by a full disk left a ``.part`` file that nothing
    removed, on a disk with no room to spare."""
    occupied = tmp_path / "photo.jpg"
    occupied.mkdir()  # the final rename fails, as a full disk's write would
    with pytest.raises(OSError):
        write_whole(occupied, b"jpeg bytes")
    source = sqlite3.connect(":memory:")
    source.close()  # the copy fails part-way
    with pytest.raises(sqlite3.ProgrammingError):
        copy_database(source, tmp_path / "hub-copy.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]


async def test_a_database_removed_under_the_hub_is_saved_and_not_started_afresh(
    make_config, staff: dict[str, str]  # noqa: ANN001 - fixture
) -> None:
    """Why: a database file deleted while the hub ran went unnoticed (the open file answered
    on); the next start made an empty store, the shop took its empty stock for the truth and
    every order it sent again was rejected as "not sold in this store"."""
    config = make_config(**CORE_ONLY)
    database = config.store.database
    hub = await start_hub(config)
    try:
        svc = hub.services
        svc.catalog.import_rows([(1, {"sku": "OAT-1", "names": {"en": "Oat milk"},
                                      "price": "19.90", "stock": 10})], database.parent)
        database.unlink()
        assert svc.database_file is not None
        await svc.database_file.run_once()
        rescued = svc.database_file.rescued
        assert rescued is not None and rescued.parent == database.parent
        problem = svc.storage_problem()
        assert problem is not None and "was removed while the hub ran" in problem
        assert f"retail-hub restore {rescued}" in problem
        assert not database.exists()  # no empty database took its place
    finally:
        await hub.stop()
    with pytest.raises(Conflict) as refused:
        await start_hub(config)
    assert refused.value.code == "database_missing"
    assert str(rescued) in refused.value.message and "delete" in refused.value.message
    restore(rescued, database)
    hub = await start_hub(config)
    try:
        assert hub.services.inventory.stock("OAT-1").on_hand == 10
        assert hub.services.storage_problem() is None
    finally:
        await hub.stop()


def test_a_folder_that_refuses_files_is_named(tmp_path: Path) -> None:
    """Why: after an SD card error ext4 refused writes while still listed as mounted read-write,
    and the doctor's disk check looked only at free space."""
    assert refuses_writes(tmp_path) is None
    not_a_folder = tmp_path / "hub.db"
    not_a_folder.write_bytes(b"")
    refused = refuses_writes(not_a_folder)
    assert refused is not None and refused.startswith("a file cannot be written there: ")
