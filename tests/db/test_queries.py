"""The four query methods, transactions and error translation, identical on both backends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloudd.db import Database, DatabaseError, DuplicateError, Executor, IntegrityError, connect
from cloudd.db.sqlite import to_sqlite_placeholders

INSERT_FLAVOR = (
    "INSERT INTO flavors (flavorid, name, memory_mb, vcpus, rxtx_factor, description, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


async def add_flavor(db: Executor, name: str, description: str | None = None) -> None:
    await db.execute(INSERT_FLAVOR, f"id-{name}", name, 512, 1, 1.5, description, time.time())


async def test_round_trip_keeps_text_integer_double_and_null(db: Database) -> None:
    created_at = 1_700_000_000.25
    await db.execute(INSERT_FLAVOR, "f1", "m1.tiny", 512, 1, 2.5, None, created_at)
    row = await db.fetchrow("SELECT * FROM flavors WHERE flavorid = $1", "f1")
    assert row is not None
    assert (row["name"], row["memory_mb"], row["vcpus"]) == ("m1.tiny", 512, 1)
    assert row["rxtx_factor"] == 2.5 and isinstance(row["rxtx_factor"], float)
    assert row["created_at"] == created_at
    assert row["description"] is None
    assert row["extra_specs"] == "{}"  # column default
    assert isinstance(row["id"], int)


async def test_execute_returns_affected_rows_and_fetch_returns_dicts(db: Database) -> None:
    for name in ("a", "b", "c"):
        await add_flavor(db, name)
    changed = await db.execute("UPDATE flavors SET disabled = 1 WHERE name <> $1", "a")
    assert changed == 2
    rows = await db.fetch("SELECT name, disabled FROM flavors ORDER BY name")
    assert rows == [
        {"name": "a", "disabled": 0},
        {"name": "b", "disabled": 1},
        {"name": "c", "disabled": 1},
    ]
    assert await db.execute("DELETE FROM flavors WHERE name = $1", "nope") == 0


async def test_fetchrow_and_fetchval_return_none_when_nothing_matches(db: Database) -> None:
    assert await db.fetchrow("SELECT * FROM flavors WHERE name = $1", "missing") is None
    assert await db.fetchval("SELECT name FROM flavors WHERE name = $1", "missing") is None
    await add_flavor(db, "x")
    assert await db.fetchval("SELECT count(*) FROM flavors") == 1


async def test_transaction_commits_on_normal_exit(db: Database) -> None:
    async with db.transaction() as tx:
        await add_flavor(tx, "kept")
        assert await tx.fetchval("SELECT count(*) FROM flavors") == 1
    assert await db.fetchval("SELECT name FROM flavors") == "kept"


async def test_transaction_rolls_back_when_the_block_raises(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as tx:
            await tx.execute(INSERT_FLAVOR, "f", "lost", 1, 1, 1.0, None, 0.0)
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT count(*) FROM flavors") == 0


async def test_transaction_rolls_back_earlier_statements_on_database_error(db: Database) -> None:
    await add_flavor(db, "taken")
    with pytest.raises(DuplicateError):
        async with db.transaction() as tx:
            await tx.execute(INSERT_FLAVOR, "other", "fresh", 1, 1, 1.0, None, 0.0)
            await tx.execute(INSERT_FLAVOR, "other2", "taken", 1, 1, 1.0, None, 0.0)
    assert [row["name"] for row in await db.fetch("SELECT name FROM flavors")] == ["taken"]


async def test_unique_violation_is_duplicate_error(db: Database) -> None:
    await add_flavor(db, "m1.small")
    with pytest.raises(DuplicateError) as caught:
        await add_flavor(db, "m1.small")
    assert isinstance(caught.value, DatabaseError)


async def test_foreign_key_violation_is_integrity_error(db: Database) -> None:
    with pytest.raises(IntegrityError):
        await db.execute(
            "INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)", 999, "p"
        )


async def test_bad_sql_is_database_error(db: Database) -> None:
    with pytest.raises(DatabaseError):
        await db.fetch("SELECT * FROM no_such_table")


async def test_placeholders_skip_dollars_inside_string_literals(db: Database) -> None:
    row = await db.fetchrow(
        "SELECT name, description FROM flavors WHERE name = $1 OR description = '$1 it''s $2'",
        "nobody",
    )
    assert row is None
    await add_flavor(db, "cheap", description="$1 it's $2")
    row = await db.fetchrow(
        "SELECT name FROM flavors WHERE description = '$1 it''s $2' AND name <> $1", "other"
    )
    assert row == {"name": "cheap"}


async def test_a_placeholder_may_be_used_twice(db: Database) -> None:
    await add_flavor(db, "same")
    await db.execute("UPDATE flavors SET flavorid = $1 WHERE name = $1", "same")
    assert await db.fetchval("SELECT flavorid FROM flavors WHERE name = $1", "same") == "same"


def test_sqlite_rewrite_of_placeholders() -> None:
    assert (
        to_sqlite_placeholders("a = $1 AND b = '$2' AND c = $10")
        == "a = ?1 AND b = '$2' AND c = ?10"
    )
    assert to_sqlite_placeholders("'it''s $1' || $2") == "'it''s $1' || ?2"
    assert to_sqlite_placeholders('"col$1" = $1') == '"col$1" = ?1'


async def test_binary_column_of_services_is_usable_when_quoted(db: Database) -> None:
    await db.execute(
        'INSERT INTO services (uuid, host, "binary", topic, created_at) '
        "VALUES ($1, $2, $3, $4, $5)",
        "u1",
        "host1",
        "cloudd-compute",
        "compute",
        time.time(),
    )
    assert await db.fetchval('SELECT "binary" FROM services WHERE host = $1', "host1") == (
        "cloudd-compute"
    )


async def test_closed_database_raises_database_error(db_url: str) -> None:
    db = await connect(db_url)
    await db.close()
    with pytest.raises(DatabaseError, match="closed"):
        await db.fetchval("SELECT 1")
    with pytest.raises(DatabaseError, match="closed"):
        async with db.transaction():
            pass


async def test_connect_failure_names_url_without_password() -> None:
    url = "postgresql://cloudd:s3cret@127.0.0.1:1/nova"
    with pytest.raises(DatabaseError) as caught:
        await connect(url)
    message = str(caught.value)
    assert "127.0.0.1:1/nova" in message and "s3cret" not in message


async def test_unopenable_sqlite_path_is_database_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="cannot open"):
        await connect(f"sqlite://{tmp_path}/missing-dir/cloudd.db")


async def test_unknown_scheme_is_database_error() -> None:
    with pytest.raises(DatabaseError, match="unsupported"):
        await connect("mysql://root@localhost/nova")
