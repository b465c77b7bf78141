"""Telling a failing disk apart from a bug: a Pi's SD card fills up, or the kernel remounts it
read-only after an error, and staff, the health check and the log must say so in words a
person can act on instead of "internal error"."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from hub.errors import Unavailable

#: SQLite's primary result codes for the disk failures (the low byte of an extended code).
SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 8, 10, 13, 14

FULL = ("storage_full", "the hub's storage is full: nothing was saved. Free space on the hub "
        "(old backups, logs), then try again")
READ_ONLY = ("storage_read_only", "the hub's storage has turned read-only (an SD card fault?): "
             "nothing was saved. The hub needs its disk checked or replaced")
IO_ERROR = ("storage_error", "the hub cannot write to its storage (disk I/O error): nothing was "
            "saved. The hub needs its disk checked")


PERMISSION_CODE = "storage_permission"
PERMISSION_TEXT = ("the hub may not use its own files: they belong to another user or were made "
                   "read-only (by a command run with sudo or as another user). Nothing was "
                   "saved. Give them back to the hub's user (docs/install-pi.md: sudo chown -R "
                   "retail-hub: /var/lib/retail-hub && sudo chmod -R u+rwX /var/lib/retail-hub)")


class StorageFailed(Unavailable):
    """A write the disk refused; 503, since trying again once the disk is mended succeeds."""


#: A disk with less free than this is full: SQLite reports its WAL files' failure to grow on a
#: full disk as an I/O error, which would send staff to replace a card that only needs room.
FULL_BELOW_BYTES = 1024 * 1024


def storage_failure(exc: BaseException, database: Path | None = None) -> StorageFailed | None:
    """What ``exc`` says about the disk, or None when it is not a disk failure. An I/O error on
    a full disk (the one holding ``database``) is said as the full disk it is, and a database
    SQLite may not write because its files belong to another user as that, not as a failing
    card (a filesystem mounted read-only is the card)."""
    kind: tuple[str, str] | None = None
    folder = database.parent if database is not None else None
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (SQLITE_READONLY, SQLITE_CANTOPEN) and database is not None:
            foreign = foreign_file(database_files(database))
            if foreign is not None:
                return StorageFailed(f"{PERMISSION_TEXT} ({foreign})", code=PERMISSION_CODE)
        kind = {SQLITE_FULL: FULL, SQLITE_READONLY: READ_ONLY, SQLITE_IOERR: IO_ERROR}.get(code)
        if code == SQLITE_CANTOPEN and folder is not None and read_only(folder):
            kind = READ_ONLY  # a WAL database cannot open without writing its -shm file
    elif isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM) and exc.filename and not read_only(
                Path(exc.filename)):
            return StorageFailed(f"{PERMISSION_TEXT} ({exc.filename}: {exc.strerror})",
                                 code=PERMISSION_CODE)
        kind = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READ_ONLY,
                errno.EIO: IO_ERROR}.get(exc.errno or 0)
    if kind is None:
        return None
    if kind is IO_ERROR and folder is not None and _full(folder):
        kind = FULL
    return StorageFailed(kind[1], code=kind[0])


def _full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW_BYTES
    except OSError:  # the disk cannot even say: leave the I/O error as it is
        return False


def read_only(path: Path) -> bool:
    """Whether the filesystem holding ``path`` (or its nearest existing folder it may look
    into) is mounted read-only. A folder that may not be searched (another user's, mode 700)
    counts as not there: asking raised PermissionError inside the very handler meant to say
    that the files belong to another user."""
    while path != path.parent:
        try:
            return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
        except OSError:
            path = path.parent
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def refuses_writes(folder: Path) -> str | None:
    """Why a new file cannot be written in ``folder``, or None. Asked of the disk itself: after
    an error ext4 may refuse writes while still listed as mounted read-write."""
    if read_only(folder):
        return "the filesystem is mounted read-only"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"a file cannot be written there: {exc.strerror or exc}"
    return None


def write_whole(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so that it appears only whole and on disk before the
    database row that names it commits; a write the disk refuses leaves no partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with part.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)


def foreign_file(paths: Iterable[Path]) -> str | None:
    """The first of ``paths`` (those that exist, on a filesystem mounted read-write) this
    process may not write, said for a person ("hub.db belongs to root and this runs as
    retail-hub", or "hub.db is read-only for its owner (-r--r--r--)"), or None.

    Why: after a command run with sudo the hub's database or images belong to root, and SQLite
    then reports a read-only database, which reads like a failing SD card. A card the kernel
    has mounted read-only is not this: its files are refused to everyone."""
    for path in paths:
        try:
            if not path.exists() or read_only(path):
                continue
            if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
                info = path.stat()
                if info.st_uid != os.geteuid():
                    return (f"{path} belongs to {_user(info.st_uid)} and this runs as "
                            f"{_user(os.geteuid())}")
                return f"{path} is read-only for its owner ({stat.filemode(info.st_mode)})"
        except OSError:
            continue
    return None


def database_files(database: Path) -> list[Path]:
    """The database's folder, the database and its WAL files: what SQLite writes."""
    return [database.parent, database,
            *(database.with_name(database.name + end) for end in ("-wal", "-shm"))]


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"user {uid}"
