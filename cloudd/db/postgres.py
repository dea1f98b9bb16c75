"""PostgreSQL backend: an asyncpg pool; a transaction holds one pool connection throughout."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from cloudd.db.base import (
    Database,
    DatabaseError,
    DuplicateError,
    Executor,
    IntegrityError,
    Row,
    redact_url,
)

CONNECT_TIMEOUT_S = 10.0
# pg_advisory_xact_lock key for migrations: any constant works as long as every cloudd agrees on it.
MIGRATION_LOCK_KEY = 0x636C6F756464  # "cloudd"


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateError(_describe(exc)) from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(_describe(exc)) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(_describe(exc)) from exc
    except asyncpg.InternalClientError as exc:  # a connection the server dropped mid-operation
        raise DatabaseError(f"database connection broken: {exc}") from exc
    except OSError as exc:  # the server is down or restarting: the pool cannot (re)connect
        raise DatabaseError(f"cannot reach the database: {exc!r}") from exc


def _describe(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    return f"{exc} ({detail})" if detail else str(exc)


def _row_count(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "CREATE TABLE") -> affected rows."""
    last_word = status.rsplit(" ", 1)[-1]
    return int(last_word) if last_word.isdigit() else 0


class PgExecutor(Executor):
    """Statements on a pool (each borrows a connection) or on one connection (a transaction's)."""

    dialect = "postgresql"

    def __init__(self, target: asyncpg.Pool | asyncpg.Connection) -> None:
        self._target = target

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> int:
        with _translated_errors():
            return _row_count(await self._target.execute(sql, *args))

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        with _translated_errors():
            return [dict(record) for record in await self._target.fetch(sql, *args)]


class PgDatabase(PgExecutor, Database):
    _table_exists_sql = (
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = $1"
    )

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.url = redact_url(url)
        self._pool = pool

    def _check_open(self) -> None:
        if self._pool.is_closing():
            raise DatabaseError(f"database {self.url} is closed")

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> int:
        self._check_open()
        return await super()._execute(sql, args)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        self._check_open()
        return await super()._fetch(sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        self._check_open()
        with _translated_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                yield PgExecutor(conn)

    async def _lock_migrations(self, tx: Executor) -> None:
        await tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")

    async def close(self) -> None:
        if not self._pool.is_closing():
            await self._pool.close()


async def open_database(url: str, pool_size: int) -> PgDatabase:
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, not {pool_size}")
    try:
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=pool_size, timeout=CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(f"cannot connect to {redact_url(url)}: {exc}") from exc
    return PgDatabase(url, pool)
