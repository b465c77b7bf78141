"""The hub's SQLite database: connections, migrations and transactions.

One file in WAL mode with ``synchronous=FULL``, so a movement acknowledged to a client survives a
power cut. Each thread has its own connection. Writes run on one dedicated writer thread so they
never block the event loop and never contend with each other; reads run on a small reader pool.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

T = TypeVar("T")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
BUSY_TIMEOUT_MS = 10_000


class Transaction:
    """An open write transaction: the connection, the sequence and hooks to run after commit."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.db.conn.execute(sql, params)

    def next_seq(self) -> int:
        """The next number of the store-wide sequence; never reused, even after a crash."""
        row = self.db.conn.execute(
            "UPDATE store_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'last_seq' "
            "RETURNING CAST(value AS INTEGER)"
        ).fetchone()
        return int(row[0])

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(callback)


class Database:
    """The store's database file and the threads that use it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="db-reader")

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with self._lock:
            self._connections.append(conn)
        return conn

    def conn(self) -> sqlite_utils.Database:
        """This thread's connection, opened on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(self._connect())
            self._local.db = db
        return db

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts."""
        return list(self.conn().query(sql, params))

    def query_one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        outer: Transaction | None = getattr(self._local, "tx", None)
        if outer is not None:
            yield outer
            return
        db = self.conn()
        tx = Transaction(db)
        db.conn.execute("BEGIN IMMEDIATE")
        self._local.tx = tx
        try:
            yield tx
        except BaseException:
            self._local.tx = None
            db.conn.execute("ROLLBACK")
            raise
        self._local.tx = None
        db.conn.execute("COMMIT")
        for callback in tx._after_commit:
            callback()

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a writing function on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a reading function on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, partial(fn, *args, **kwargs))

    def migrate(self) -> list[str]:
        """Apply every migration not yet applied, in number order; returns the names applied."""
        db = self.conn()
        db.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in db.conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in available_migrations():
            if version in done:
                continue
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    db.conn.execute(statement)
                db.conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))", (version, name)
                )
            except BaseException:
                db.conn.execute("ROLLBACK")
                raise
            db.conn.execute("COMMIT")
            applied.append(name)
        return applied

    def close(self) -> None:
        """Stop the worker threads and close every connection."""
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every packaged migration, sorted by version."""
    found = []
    for entry in resources.files("hub.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migrations share a number")
    return sorted(found)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        statements.append(current.strip())
    return [s for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())
