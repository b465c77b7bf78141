"""Online backup and restore of the hub's database.

A backup uses SQLite's backup API, so the hub keeps serving while it runs and the copy is a
consistent snapshot. A restore puts a backup back in place (keeping the replaced file) and records
when it happened (``store_meta.restored_at``) and where the restored history ends
(``sync_state.restored_at_seq``, until the shop acknowledges a run after it). Every start of the
hub begins a new sync epoch that is above any earlier one even when the database is older (the
epoch is time-based, and a restore keeps the replaced database's epoch as its floor for a clock
that is behind), so the shop sees the rewind, forgets what it applied beyond the restored
sequence and rebuilds its view from the store's snapshots instead of mistaking new sequence
numbers for old ones.
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


def lock_path(database: Path) -> Path:
    """The lock file a running hub holds; it stays after the hub stops."""
    return database.with_name(database.name + ".lock")


def refuse_lost_database(database: Path) -> None:
    """Refuse to start a store afresh where its database has gone missing.

    SQLite would create an empty file in its place: the hub would begin a new run with no
    products, the shop would take its empty stock for the truth and every order it sends again
    would be rejected. The lock file left by an earlier run tells a lost database from a first
    start.
    """
    lock = lock_path(database)
    if database.exists() or not lock.exists():
        return
    copies = sorted(database.parent.glob(f"{database.name}.rescued-*"))
    where = (f"the copy the hub saved when it noticed, {copies[-1]}" if copies
             else "the latest backup")
    raise Conflict(
        f"{database} is missing, but a hub has run on it before ({lock} is left from that): "
        f"restore {where} with 'retail-hub restore FILE'; to start this store with an empty "
        f"database on purpose, delete {lock}", code="database_missing")


@contextmanager
def exclusive_use(database: Path) -> Iterator[None]:
    """Hold the database's lock file; refuse if a running hub (or a restore) already holds it."""
    lock = lock_path(database)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
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
    target = folder / f"{BACKUP_PREFIX}{_stamp(now)}.db"
    with _one_backup_at_a_time(folder):
        # a copy whose backup was killed (a power cut during the nightly timer) is left whole
        # size, and no later one would remove it: while this backup holds the folder's lock,
        # no other is writing one
        for stale in folder.glob(f"{BACKUP_PREFIX}*.db.part"):
            stale.unlink(missing_ok=True)
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            copy_database(source, target)
        finally:
            source.close()
        if keep is not None:
            # the copy just made is kept whatever its name says: a clock that was behind (a Pi
            # without a battery clock, before NTP) names it older than the ones before
            others = sorted(p for p in folder.glob(f"{BACKUP_PREFIX}*.db") if p != target)
            for old in others[: max(0, len(others) - (keep - 1))]:
                old.unlink()
    return target


@contextmanager
def _one_backup_at_a_time(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s backup lock; a second backup into it (the nightly timer and one run by
    hand) waits for the first."""
    fd = os.open(folder / ".backup.lock", os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rescue(source: sqlite3.Connection, database: Path, now: float | None = None) -> Path:
    """Copy what the hub holds, through its own open ``source``, to a file beside ``database``
    (whose path no longer names that file), for a restore to put back."""
    target = database.with_name(f"{database.name}.rescued-{_stamp(now)}")
    copy_database(source, target)
    return target


def copy_database(source: sqlite3.Connection, target: Path) -> None:
    """A consistent, checked copy of ``source`` at ``target``, which appears only whole: a copy
    that fails (a full disk) leaves nothing behind, not a partial file for nobody to remove.

    ``VACUUM INTO`` writes a compacted snapshot: the pages freed as the outbox drains are left
    out (about half of a busy store's file after an outage), and a nightly copy kept for two
    weeks costs that much less of the SD card.
    """
    partial = target.with_name(target.name + ".part")
    try:
        source.execute("VACUUM INTO ?", (str(partial),))
        copy = sqlite3.connect(partial)
        try:
            copy.execute("PRAGMA journal_mode=DELETE")
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
        if verdict != "ok":
            raise Conflict(f"the copy failed its integrity check: {verdict}")
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _stamp(now: float | None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))


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
    stamp = _stamp(now)
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
            # Where the restored history ends, until the shop acknowledges a run after it: a
            # run begun before then (the hub restarted again) says it took over only this much.
            conn.execute("INSERT INTO sync_state (key, value) SELECT 'restored_at_seq', "
                         "CAST(value AS INTEGER) FROM store_meta WHERE key = 'last_seq' "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
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
