"""Online backup and restore of the hub's database.

A backup uses SQLite's backup API, so the hub keeps serving while it runs and the copy is a
consistent snapshot. A restore puts a backup back in place (keeping the replaced file) and records
when it happened (``store_meta.restored_at``). Every start of the hub begins a new sync epoch that
is above any earlier one even when the database is older (the epoch is time-based, and a restore
keeps the replaced database's epoch as its floor for a clock that is behind), so the shop
sees the rewind, forgets what it applied beyond the restored sequence and rebuilds its view from
the store's snapshots instead of mistaking new sequence numbers for old ones.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.errors import Conflict, InvalidInput

BACKUP_PREFIX = "hub-"
PAGES_PER_STEP = 1024


@contextmanager
def exclusive_use(database: Path) -> Iterator[None]:
    """Hold the database's lock file; refuse if a running hub (or a restore) already holds it."""
    lock_path = database.with_name(database.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"{database} is in use by a running hub; stop it first "
                "(sudo systemctl stop retail-hub)", code="database_in_use",
            ) from None
        yield
    finally:
        os.close(fd)


def backup(database: Path, folder: Path, keep: int | None = None, now: float | None = None) -> Path:
    """Write a consistent copy of ``database`` into ``folder``; keep only the newest ``keep``."""
    if not database.exists():
        raise InvalidInput(f"{database} does not exist; nothing to back up")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    target = folder / f"{BACKUP_PREFIX}{stamp}.db"
    partial = target.with_suffix(".part")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy, pages=PAGES_PER_STEP, sleep=0.005)
        copy.execute("PRAGMA journal_mode=DELETE")
        verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        copy.close()
        source.close()
    if verdict != "ok":
        partial.unlink()
        raise Conflict(f"the backup failed its integrity check: {verdict}")
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    partial.replace(target)
    if keep is not None:
        for old in sorted(folder.glob(f"{BACKUP_PREFIX}*.db"))[:-keep]:
            old.unlink()
    return target


def _epoch(database: Path) -> int:
    """The sync epoch of the hub database at ``database`` (0 when there is none to read)."""
    if not database.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM sync_state WHERE key = 'epoch'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:  # a damaged database is what the backup replaces
        return 0
    return int(row[0]) if row else 0


def restore(backup_file: Path, database: Path, now: float | None = None) -> Path | None:
    """Put ``backup_file`` in place of ``database``; returns where the replaced file was kept."""
    if not backup_file.is_file():
        raise InvalidInput(f"{backup_file} is not a file")
    try:
        conn = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.execute("SELECT value FROM store_meta WHERE key = 'last_seq'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{backup_file} is not a hub database backup: {exc}") from None
    if verdict != "ok":
        raise InvalidInput(f"{backup_file} is damaged: {verdict}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    kept = None
    with exclusive_use(database):
        staged = database.with_name(database.name + ".restoring")
        staged.write_bytes(backup_file.read_bytes())
        conn = sqlite3.connect(staged)
        try:
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES ('restored_at', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (stamp,),
            )
            # The next run must be newer than the replaced database's, even with the clock
            # behind: the shop takes a run older than one it knows for a stale message.
            conn.execute("UPDATE sync_state SET value = max(CAST(value AS INTEGER), ?) "
                         "WHERE key = 'epoch'", (_epoch(database),))
            conn.commit()
        finally:
            conn.close()
        if database.exists():
            live = sqlite3.connect(database)
            try:
                live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                live.close()
            kept = database.with_name(f"{database.name}.before-restore-{stamp}")
            database.replace(kept)
        for suffix in ("-wal", "-shm"):
            side = database.with_name(database.name + suffix)
            if side.exists():
                side.unlink()
        staged.replace(database)
    return kept
