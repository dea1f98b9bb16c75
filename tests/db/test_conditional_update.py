"""insert() and conditional_update(): Nova's expected_task_state compare-and-swap."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from cloudd.db import Database, DatabaseError, Executor, conditional_update, connect, insert


async def add_instance(db: Executor, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "name": "vm",
        "project_id": "p1",
        "user_id": "u1",
        "flavor": "{}",
        "vcpus": 1,
        "memory_mb": 512,
        "vm_state": "building",
        "created_at": time.time(),
    }
    values.update(overrides)
    return await insert(db, "instances", values)


async def test_insert_returns_the_stored_row_with_id_and_defaults(db: Database) -> None:
    row = await add_instance(db, name="web1")
    assert isinstance(row["id"], int)
    assert row["name"] == "web1"
    assert row["task_state"] is None and row["power_state"] == 0 and row["metadata"] == "{}"
    assert await db.fetchval("SELECT name FROM instances WHERE id = $1", row["id"]) == "web1"


async def test_update_applies_when_the_row_is_in_the_expected_state(db: Database) -> None:
    instance = await add_instance(db, task_state="spawning")
    updated = await conditional_update(
        db,
        "instances",
        {"uuid": instance["uuid"]},
        {"vm_state": "active", "task_state": None, "launched_at": 123.5},
        expected={"task_state": "spawning"},
    )
    assert updated is not None
    assert (updated["vm_state"], updated["task_state"], updated["launched_at"]) == (
        "active",
        None,
        123.5,
    )
    stored = await db.fetchrow("SELECT * FROM instances WHERE uuid = $1", instance["uuid"])
    assert stored == updated


async def test_update_returns_none_and_changes_nothing_when_state_differs(db: Database) -> None:
    instance = await add_instance(db, task_state="deleting")
    updated = await conditional_update(
        db,
        "instances",
        {"uuid": instance["uuid"]},
        {"task_state": "rebooting"},
        expected={"task_state": None},
    )
    assert updated is None
    stored_state = await db.fetchval(
        "SELECT task_state FROM instances WHERE uuid = $1", instance["uuid"]
    )
    assert stored_state == "deleting"


async def test_update_of_a_missing_row_returns_none(db: Database) -> None:
    assert await conditional_update(db, "instances", {"uuid": "gone"}, {"progress": 5}) is None


async def test_expected_none_matches_only_null(db: Database) -> None:
    idle = await add_instance(db)
    updated = await conditional_update(
        db, "instances", {"id": idle["id"]}, {"task_state": "powering-off"}, {"task_state": None}
    )
    assert updated is not None and updated["task_state"] == "powering-off"


@pytest.mark.parametrize(
    ("current", "wins"),
    [("rebooting", True), ("reboot_pending", True), (None, True), ("deleting", False)],
)
async def test_expected_list_matches_any_member_and_none_means_null(
    db: Database, current: str | None, wins: bool
) -> None:
    instance = await add_instance(db, task_state=current)
    updated = await conditional_update(
        db,
        "instances",
        {"uuid": instance["uuid"]},
        {"task_state": "rebooting_hard"},
        expected={"task_state": ["rebooting", "reboot_pending", None], "vm_state": ("building",)},
    )
    assert (updated is not None) is wins


async def test_empty_expected_list_matches_nothing(db: Database) -> None:
    instance = await add_instance(db)
    updated = await conditional_update(
        db, "instances", {"uuid": instance["uuid"]}, {"progress": 1}, {"task_state": []}
    )
    assert updated is None


async def test_key_selects_only_its_row(db: Database) -> None:
    mine, other = await add_instance(db, name="mine"), await add_instance(db, name="other")
    await conditional_update(db, "instances", {"uuid": mine["uuid"]}, {"vm_state": "stopped"})
    assert await db.fetchval("SELECT vm_state FROM instances WHERE id = $1", other["id"]) == (
        "building"
    )


async def test_works_inside_a_transaction(db: Database) -> None:
    async with db.transaction() as tx:
        instance = await add_instance(tx)
        updated = await conditional_update(
            tx,
            "instances",
            {"id": instance["id"]},
            {"task_state": "scheduling"},
            {"task_state": None},
        )
    assert updated is not None
    assert await db.fetchval("SELECT task_state FROM instances") == "scheduling"


@pytest.mark.parametrize(
    ("table", "key", "values"),
    [
        ("instances; DROP TABLE users", {"id": 1}, {"name": "x"}),
        ("instances", {"id = 1 OR 1": 1}, {"name": "x"}),
        ("instances", {"id": 1}, {'name" = 1 --': "x"}),
        ("Instances", {"id": 1}, {"name": "x"}),
    ],
)
async def test_odd_table_or_column_names_are_refused(
    db: Database, table: str, key: dict[str, Any], values: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        await conditional_update(db, table, key, values)
    assert await db.fetchval("SELECT count(*) FROM users") == 0  # the table is still there


async def test_empty_key_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="key"):
        await conditional_update(db, "instances", {}, {"task_state": None})


async def test_misspelt_expected_column_is_an_error_not_a_silent_miss(db: Database) -> None:
    instance = await add_instance(db)
    with pytest.raises(DatabaseError):
        await conditional_update(
            db, "instances", {"id": instance["id"]}, {"progress": 1}, {"task_stat": None}
        )


async def test_racing_state_changes_have_exactly_one_winner(db_url: str) -> None:
    """20 tasks race to claim an idle instance, each on its own pooled connection: one wins."""
    contenders = 20
    db = await connect(db_url, pool_size=contenders)
    try:
        await db.migrate()
        instance = await add_instance(db)
        start = asyncio.Event()

        async def claim(task_state: str) -> dict[str, Any] | None:
            await start.wait()
            return await conditional_update(
                db,
                "instances",
                {"uuid": instance["uuid"]},
                {"task_state": task_state},
                expected={"task_state": None},
            )

        racers = [asyncio.create_task(claim(f"task-{n}")) for n in range(contenders)]
        await asyncio.sleep(0.05)  # let every racer reach the start line (and PG fill its pool)
        start.set()
        results = await asyncio.gather(*racers)
        winners = [row for row in results if row is not None]
        assert len(winners) == 1
        stored = await db.fetchval(
            "SELECT task_state FROM instances WHERE uuid = $1", instance["uuid"]
        )
        assert stored == winners[0]["task_state"]
    finally:
        await db.close()
