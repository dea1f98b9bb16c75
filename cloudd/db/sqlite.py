"""SQLite backend: one aiosqlite connection in WAL mode, serialized by an asyncio.Lock.

A transaction holds the lock from BEGIN IMMEDIATE to COMMIT/ROLLBACK, so no other statement of this
process can slip into it; BEGIN IMMEDIATE takes SQLite's write lock up front so that racing
writers in other processes queue on busy_timeout instead of failing at COMMIT.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from typing import Any

import aiosqlite

from cloudd.db.base import Database, DatabaseError, DuplicateError, Executor, IntegrityError, Row

BUSY_TIMEOUT_MS = 10_000

# A quoted literal/identifier (left alone) or a $N placeholder (rewritten to ?N).
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\d+)")

# Which SqliteDatabase the current task is inside a transaction of: a plain statement on the
# database (or a nested transaction) from inside would wait forever for the lock the task holds.
_current_transaction: ContextVar[SqliteDatabase | None] = ContextVar(
    "cloudd_sqlite_transaction", default=None
)


def to_sqlite_placeholders(sql: str) -> str:
    """Rewrite PostgreSQL's $1, $2 to SQLite's ?1, ?2, leaving quoted text untouched."""
    return _TOKEN.sub(lambda match: f"?{match[1]}" if match[1] else match[0], sql)


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if exc.sqlite_errorname in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            raise DuplicateError(str(exc)) from exc
        raise IntegrityError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise DatabaseError(str(exc)) from exc


class SqliteSession(Executor):
    """Statements straight on the connection; the caller holds the lock (it is a transaction)."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> int:
        with _translated_errors():
            async with self._conn.execute(to_sqlite_placeholders(sql), args) as cursor:
                return max(cursor.rowcount, 0)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        with _translated_errors():
            async with self._conn.execute(to_sqlite_placeholders(sql), args) as cursor:
                return list(await cursor.fetchall())  # type: ignore[arg-type]


class SqliteDatabase(Database):
    dialect = "sqlite"
    _table_exists_sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"

    def __init__(self, url: str, conn: aiosqlite.Connection) -> None:
        self.url = url
        self._conn = conn
        self._session = SqliteSession(conn)
        self._lock = asyncio.Lock()
        self._closed = False

    def _check_usable(self) -> None:
        if self._closed:
            raise DatabaseError(f"database {self.url} is closed")
        if _current_transaction.get() is self:
            raise DatabaseError(
                "statement on the database while this task is inside one of its transactions: "
                "use the transaction object (nested transactions are not supported)"
            )

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> int:
        self._check_usable()
        async with self._lock:
            return await self._session._execute(sql, args)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        self._check_usable()
        async with self._lock:
            return await self._session._fetch(sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        self._check_usable()
        async with self._lock:
            self._check_usable()  # closed while we waited?
            await self._session._execute("BEGIN IMMEDIATE", ())
            token = _current_transaction.set(self)
            try:
                yield self._session
                await self._session._execute("COMMIT", ())
            except BaseException:
                with suppress(DatabaseError):  # keep the original error, not a failed ROLLBACK's
                    await self._session._execute("ROLLBACK", ())
                raise
            finally:
                _current_transaction.reset(token)

    async def _lock_migrations(self, tx: Executor) -> None:
        """Nothing to do: BEGIN IMMEDIATE already excludes every other writer of the file."""

    async def close(self) -> None:
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            await self._conn.close()


def _probe_open(path: str) -> None:
    sqlite3.connect(path).close()


async def open_database(url: str, path: str) -> SqliteDatabase:
    try:
        # Probe with plain sqlite3 first: when aiosqlite.connect() itself fails, its worker thread
        # later reports to a loop that may be closed by then.
        await asyncio.to_thread(_probe_open, path)
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {url}: {exc}") from exc
    conn.row_factory = _dict_row  # type: ignore[assignment]
    try:
        for pragma in (
            f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",  # durable enough with WAL, and much faster
            "PRAGMA foreign_keys = ON",
        ):
            await conn.execute(pragma)
    except sqlite3.Error as exc:
        await conn.close()
        raise DatabaseError(f"cannot open {url}: {exc}") from exc
    return SqliteDatabase(url, conn)
