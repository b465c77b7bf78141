"""A few megabytes of the hub's disk held back for the hub itself.

An SD card that fills up (a log, backups, someone's copy) left the hub unable to start at all:
SQLite cannot open a WAL database without room for its shared-memory and log files, so systemd
restarted it every 5 s and the kiosks, the staff page and arrival reminders were all gone until
someone freed space by hand. The hub keeps a reserve file beside its database and gives it up
when it finds the disk full at start: it then starts, answers searches, shows staff the full disk
in Store health, and refuses changes it cannot keep with ``storage_full`` once the room is used.
The reserve is made again at a start with room to spare.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

#: A reserve is made only while the disk keeps this many times its size free besides.
ROOM_FACTOR = 4


class DiskReserve:
    """The reserve file ``<database>.reserve`` of ``megabytes`` (0: none)."""

    def __init__(self, database: Path, megabytes: int) -> None:
        self.path = database.with_name(database.name + ".reserve")
        self.size = megabytes * 1024 * 1024

    def release_if_full(self) -> bool:
        """Remove the reserve when the disk is full (less free than the reserve would give), so
        the hub can start; whether it did."""
        if not self.path.exists():
            return False
        free = shutil.disk_usage(self.path.parent).free
        if free >= self.size:
            return False
        self.path.unlink()
        log.warning("the disk holding %s was full (%.1f MiB free): released the hub's %d MiB "
                    "reserve to start. Free space on the hub (old backups, logs); changes are "
                    "refused once this room is used", self.path.parent, free / 2**20,
                    self.size // 2**20)
        return True

    def keep(self) -> None:
        """Make the reserve if it is missing and the disk has room for it to spare. Its blocks
        are allocated, not left sparse: a sparse file would hold nothing back. A reserve turned
        off (0) is removed."""
        if self.size == 0:
            self.path.unlink(missing_ok=True)
            return
        if self.path.exists():
            return
        part = self.path.with_name(self.path.name + ".part")
        try:
            if shutil.disk_usage(self.path.parent).free < self.size * (ROOM_FACTOR + 1):
                return
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(part, self.path)
        except OSError as exc:  # no reserve is no worse than before; the part file must not stay
            part.unlink(missing_ok=True)
            log.warning("could not make the disk reserve %s: %s", self.path, exc.strerror or exc)
