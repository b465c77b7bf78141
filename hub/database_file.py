"""Noticing that the database file was removed or replaced under the running hub, and saving
what the hub still holds before it is lost.

The open file goes on answering, so nothing else would tell: the loss would show only at the
next start, as an empty store. The copy is taken through a connection opened at start, while the
path still led to the file: it is the only way back to it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from hub.backup import rescue
from hub.clock import Clock
from hub.db import Database
from hub.errors import HubError
from hub.periodic import PeriodicJob

log = logging.getLogger(__name__)

#: How often the path is checked (one stat call).
CHECK_EVERY_S = 30.0


class DatabaseFileWatch(PeriodicJob):
    """Checks the database's path now and then; once it no longer names the open file, copies
    that file beside it and says so in the log and in :meth:`problem` (health checks)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__("database-file", CHECK_EVERY_S, clock, self.run_once)
        self.db = db
        self.rescued: Path | None = None
        self._problem: str | None = None
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        uri = f"{self.db.path.absolute().as_uri()}?mode=rw"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._conn.execute("PRAGMA schema_version")  # maps the WAL index while it can be found
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def problem(self) -> str | None:
        """What a person must know and do, or None while the file is in place."""
        return self._problem

    async def run_once(self) -> None:
        changed = self.db.file_problem()
        if changed is None or self.rescued is not None or self._conn is None:
            return
        try:
            self.rescued = await asyncio.to_thread(rescue, self._conn, self.db.path,
                                                   self.clock.now())
        except (OSError, sqlite3.Error, HubError) as exc:
            self._problem = (f"{changed}, and a copy of it could not be saved ({exc}): keep the "
                             "hub running and get help; stopping it loses what it holds")
        else:
            self._problem = (f"{changed}; a copy of everything it holds is saved at "
                             f"{self.rescued}: stop the hub and run 'retail-hub restore "
                             f"{self.rescued}'")
        log.error("%s", self._problem)
