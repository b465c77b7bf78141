"""Online backup while the ledger is being written, and restore with its safety checks."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.app import start_hub
from hub.backup import backup, restore
from hub.cli import main
from hub.config import HubConfig
from hub.errors import Conflict, InvalidInput
from hub.inventory import MovementIn
from hub.services import Services, build_services


def ledger_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM stock_ledger").fetchone()[0])
    finally:
        conn.close()


async def test_backup_while_writing_is_consistent(stocked: Services, tmp_path: Path) -> None:
    async def writer() -> None:
        for i in range(150):
            await stocked.db.write(stocked.inventory.record,
                                   MovementIn(sku="BAN-1", qty=1, reason="receipt", ref=f"b{i}"))

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    target = await asyncio.to_thread(backup, stocked.config.store.database, tmp_path / "bk")
    await task
    conn = sqlite3.connect(target)
    derived = dict(conn.execute("SELECT sku, on_hand FROM stock"))
    summed = dict(conn.execute("SELECT sku, SUM(qty) FROM stock_ledger GROUP BY sku"))
    assert derived == summed
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_keep_prunes_old_backups(stocked: Services, tmp_path: Path) -> None:
    folder = tmp_path / "bk"
    for day in range(4):
        backup(stocked.config.store.database, folder, keep=2, now=1_800_000_000 + day * 86400)
    assert len(list(folder.glob("hub-*.db"))) == 2


def test_a_copy_left_by_a_killed_backup_goes_with_the_next(stocked: Services,
                                                         tmp_path: Path) -> None:
    """Why: a backup killed mid-copy (a power cut during the nightly timer) left a full-size
    ``.part`` that ``--keep`` never matched, one more on the SD card with each cut."""
    folder = tmp_path / "bk"
    folder.mkdir()
    stale = folder / "hub-20270101T030000Z.db.part"
    stale.write_bytes(b"\0" * 4096)
    other = folder / "notes.part"  # not a backup's: left alone
    other.write_text("mine")
    made = backup(stocked.config.store.database, folder, keep=2, now=1_800_000_000)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [made.name, "notes.part", ".backup.lock"])


def test_keep_never_deletes_the_backup_just_made(stocked: Services, tmp_path: Path) -> None:
    """Why: with the clock behind (a Pi after a power cut, before NTP) the new backup's name
    sorted first and it was deleted at once, while the command said it was written."""
    folder = tmp_path / "bk"
    for day in range(3):
        backup(stocked.config.store.database, folder, keep=3, now=1_800_000_000 + day * 86400)
    behind = backup(stocked.config.store.database, folder, keep=3, now=1_800_000_000 - 30 * 86400)
    kept = sorted(folder.glob("hub-*.db"))
    assert behind.exists() and kept[0] == behind
    assert [p.name[4:12] for p in kept] == ["20261216", "20270116", "20270117"]


def test_a_backup_leaves_out_the_room_a_drained_outbox_freed(stocked: Services,
                                                            tmp_path: Path) -> None:
    """Why: backups copied the file page for page, free pages included: after an outage the
    drained outbox leaves about half of a busy store's file free, in each of 14 nightly copies."""
    for i in range(3000):
        stocked.inventory.record(MovementIn(sku="BAN-1", qty=1, reason="receipt", ref=f"f{i}"))
    with stocked.db.transaction() as tx:  # the shop has acknowledged it all
        tx.execute("DELETE FROM outbox")
    stocked.db.conn().conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database = stocked.config.store.database
    target = backup(database, tmp_path / "bk")
    assert target.stat().st_size < 0.8 * database.stat().st_size
    assert ledger_count(target) == ledger_count(database)


def test_restore_puts_the_backup_back(make_config, tmp_path: Path) -> None:
    config: HubConfig = make_config()
    svc = build_services(config, with_features=False)
    svc.catalog.import_rows([(1, {"sku": "A", "names": {"en": "A"}, "stock": 5})], tmp_path)
    target = backup(config.store.database, tmp_path / "bk")
    svc.inventory.record(MovementIn(sku="A", qty=2, reason="sale"))
    svc.close()
    live = sqlite3.connect(config.store.database)  # a later run, as the shop knows it
    live.execute("UPDATE sync_state SET value = 1800000000000 WHERE key = 'epoch'")
    live.commit()
    live.close()
    kept = restore(target, config.store.database)
    assert kept is not None and ledger_count(kept) == 2, "the replaced database is kept whole"
    assert ledger_count(config.store.database) == 1
    conn = sqlite3.connect(config.store.database)
    marker = conn.execute("SELECT value FROM store_meta WHERE key = 'restored_at'").fetchone()
    # the next run starts above the replaced one's even if the clock is behind then
    (epoch,) = conn.execute("SELECT value FROM sync_state WHERE key = 'epoch'").fetchone()
    conn.close()
    assert marker is not None and int(epoch) == 1_800_000_000_000
    svc = build_services(config, with_features=False)
    assert svc.inventory.stock("A").on_hand == 5
    svc.close()


async def test_restore_refuses_while_the_hub_runs(make_config, tmp_path: Path) -> None:
    config: HubConfig = make_config()
    hub = await start_hub(config)
    try:
        target = await asyncio.to_thread(backup, config.store.database, tmp_path / "bk")
        with pytest.raises(Conflict, match="in use by a running hub"):
            restore(target, config.store.database)
        with pytest.raises(Conflict, match="in use"):
            await start_hub(config)
    finally:
        await hub.stop()


def test_restore_refuses_damaged_or_foreign_files(make_config, tmp_path: Path) -> None:
    config: HubConfig = make_config()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)
    with pytest.raises(InvalidInput, match="not a hub database backup|damaged"):
        restore(junk, config.store.database)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(InvalidInput, match="not a hub database backup"):
        restore(other, config.store.database)
    with pytest.raises(InvalidInput, match="not a file"):
        restore(tmp_path / "missing.db", config.store.database)


def test_backup_command_writes_beside_the_database(
    make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: the default folder was ./backups of wherever the command ran, not where the next
    backup (or a restore) would look."""
    config = make_config()
    build_services(config).close()  # the database exists
    path = tmp_path / "hub.toml"
    path.write_text(f'[store]\nid = "s"\nname = "S"\ndatabase = "{config.store.database}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(main, ["backup", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert list((config.store.database.parent / "backups").glob("*.db"))
    assert not (elsewhere / "backups").exists()
