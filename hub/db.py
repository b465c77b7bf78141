"""The hub's SQLite database: connections, migrations and transactions.

One file in WAL mode with ``synchronous=FULL``, so a movement acknowledged to a client survives a
power cut. Each thread has its own connection. Writes run on one dedicated writer thread so they
never block the event loop and never contend with each other, and writes that queue up while a
commit is syncing share the next commit (group commit); reads run on a small reader pool.
"""

from __future__ import annotations

import asyncio
import queue
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

from hub.storage import StorageFailed, storage_failure

T = TypeVar("T")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
BUSY_TIMEOUT_MS = 10_000
MAX_GROUP_COMMIT = 256


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
        self._queue: queue.Queue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            queue.Queue()
        )
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="db-reader")
        self._file: tuple[int, int] | None = None  # (device, inode) of the file first opened
        #: Why the last write failed when the disk refused it; None once a write commits.
        self.write_failure: StorageFailed | None = None

    def _connect(self) -> sqlite3.Connection:
        """A connection for this thread. Only the first may create the file: a later one opening
        after the file was removed would otherwise write to a new, empty database."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target: str | Path = self.path
        else:
            target = f"{self.path.absolute().as_uri()}?mode=rw"
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000, uri=self._file is not None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with self._lock:
            self._connections.append(conn)
            if self._file is None:
                found = self.path.stat()
                self._file = (found.st_dev, found.st_ino)
        return conn

    def file_problem(self) -> str | None:
        """Why the file at ``path`` is no longer the one the hub writes, or None. A database
        removed or replaced under a running hub takes everything written since with it at the
        next start, and until then nothing says so: the open file goes on answering."""
        if self._file is None:
            return None
        try:
            found = self.path.stat()
        except FileNotFoundError:
            change = "was removed"
        else:
            if (found.st_dev, found.st_ino) == self._file:
                return None
            change = "was replaced by another file"
        return (f"the database {self.path} {change} while the hub ran: what the hub holds is "
                "lost when it stops")

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
        """A write transaction (``BEGIN IMMEDIATE``).

        Inside an open transaction this is a savepoint: if the block fails, only its own changes
        and its after-commit hooks are dropped and the outer transaction carries on.
        """
        outer: Transaction | None = getattr(self._local, "tx", None)
        db = self.conn()
        if outer is not None:
            self._local.depth = depth = getattr(self._local, "depth", 0) + 1
            name = f"sp{depth}"
            hooks = outer._after_commit
            outer._after_commit = []
            db.conn.execute(f"SAVEPOINT {name}")
            try:
                yield outer
            except BaseException:
                outer._after_commit = hooks
                if db.conn.in_transaction:  # else SQLite has rolled all of it back (see below)
                    db.conn.execute(f"ROLLBACK TO {name}")
                    db.conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._local.depth = depth - 1
            db.conn.execute(f"RELEASE {name}")
            outer._after_commit = hooks + outer._after_commit
            return
        tx = Transaction(db)
        db.conn.execute("BEGIN IMMEDIATE")
        self._local.tx = tx
        try:
            yield tx
        except BaseException:
            self._local.tx = None
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        self._local.tx = None
        db.conn.execute("COMMIT")
        for callback in tx._after_commit:
            callback()

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a writing function on the writer thread and wait until it is durably committed.

        Writes queued while the previous commit was syncing to disk are applied together in one
        transaction (group commit), each in its own savepoint so one failure does not undo the
        others. Nothing is answered before the commit that contains it.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((partial(fn, *args, **kwargs), future))
        self._ensure_writer()
        return await future

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="db-writer",
                                                daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < MAX_GROUP_COMMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            self._run_batch(batch)

    def _run_batch(self, batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        """Each job in a savepoint of one transaction.

        A full disk or an I/O error makes SQLite roll back the whole transaction, not just the
        failing job's savepoint. The jobs after it must then not run on their own (each would
        commit alone while the batch reports failure, and a retried movement would count
        twice): the batch stops, and its jobs run again one transaction each, so only those
        that still cannot be written fail, with SQLite's own reason.
        """
        outcomes: list[tuple[bool, Any]] = []
        conn = self.conn().conn
        try:
            with self.transaction():
                for fn, _ in batch:
                    try:
                        with self.transaction():
                            outcomes.append((True, fn()))
                    except Exception as exc:  # noqa: BLE001 - handed to the caller
                        if not conn.in_transaction:
                            raise
                        outcomes.append((False, exc))
        except Exception as exc:  # noqa: BLE001 - the commit itself failed: nothing was written
            if len(batch) > 1:
                for job in batch:
                    self._run_batch([job])
                return
            outcomes = [(False, exc)]
        failures = (storage_failure(value, self.path) for ok, value in outcomes if not ok)
        self.write_failure = next((f for f in failures if f is not None), None)
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            future.get_loop().call_soon_threadsafe(_settle, future, ok, value)

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
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


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
    lines = (line.strip() for line in statement.splitlines())
    return any(line and not line.startswith("--") for line in lines)
