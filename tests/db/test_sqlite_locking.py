"""SQLite specifics: a transaction excludes every other statement of the process until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudd.db import Database, DatabaseError, connect


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await connect(f"sqlite://{tmp_path}/locking.db")
    await db.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
    await db.execute("INSERT INTO counter (id, value) VALUES (1, 0)")
    try:
        yield db
    finally:
        await db.close()


async def test_read_modify_write_transactions_do_not_lose_updates(sqlite_db: Database) -> None:
    async def increment() -> None:
        async with sqlite_db.transaction() as tx:
            value = await tx.fetchval("SELECT value FROM counter WHERE id = 1")
            await asyncio.sleep(0.01)  # give the other task every chance to interleave
            await tx.execute("UPDATE counter SET value = $1 WHERE id = 1", value + 1)

    await asyncio.gather(*(increment() for _ in range(5)))
    assert await sqlite_db.fetchval("SELECT value FROM counter WHERE id = 1") == 5


async def test_plain_statement_waits_for_the_open_transaction(sqlite_db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with sqlite_db.transaction() as tx:
            await tx.execute("UPDATE counter SET value = 7 WHERE id = 1")
            inside.set()
            await release.wait()

    writing = asyncio.create_task(writer())
    await inside.wait()
    reading = asyncio.create_task(sqlite_db.fetchval("SELECT value FROM counter WHERE id = 1"))
    await asyncio.sleep(0.05)
    assert not reading.done()
    release.set()
    await writing
    assert await reading == 7


async def test_using_the_database_inside_its_own_transaction_fails_fast(
    sqlite_db: Database,
) -> None:
    async with sqlite_db.transaction():
        with pytest.raises(DatabaseError, match="transaction object"):
            await sqlite_db.fetchval("SELECT 1")
        with pytest.raises(DatabaseError, match="nested"):
            async with sqlite_db.transaction():
                pass


async def test_two_connections_to_one_file_serialize_writes(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/shared.db"
    first, second = await connect(url), await connect(url)
    try:
        await first.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
        await first.execute("INSERT INTO counter VALUES (1, 0)")

        async def increment(db: Database) -> None:
            async with db.transaction() as tx:  # BEGIN IMMEDIATE: the second waits on busy_timeout
                value = await tx.fetchval("SELECT value FROM counter WHERE id = 1")
                await asyncio.sleep(0.01)
                await tx.execute("UPDATE counter SET value = $1 WHERE id = 1", value + 1)

        await asyncio.gather(increment(first), increment(second))
        assert await second.fetchval("SELECT value FROM counter") == 2
    finally:
        await first.close()
        await second.close()
