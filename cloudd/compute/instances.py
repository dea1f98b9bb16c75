"""Instance rows in the database: read, change under expected-state checks, record actions.

Shared by the conductor (for agents) and the API (for users), so that both apply Nova's
expected_task_state rule the same way. JSON columns are decoded on the way out.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cloudd.db import Executor, Row, conditional_update

JSON_COLUMNS = ("flavor", "metadata", "system_metadata", "scheduler_hints", "request_spec")


class InstanceNotFound(Exception):
    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(f"Instance {uuid} could not be found.")


class UnexpectedState(Exception):
    """The row was not in the expected vm_state/task_state (another action won the race)."""

    def __init__(self, uuid: str, column: str, actual: Any, expected: Any) -> None:
        self.uuid, self.column, self.actual, self.expected = uuid, column, actual, expected
        super().__init__(
            f"Instance {uuid}: unexpected {column} {actual!r}, expecting {expected!r}"
        )


def decode_json(value: Any) -> Any:
    """A JSON TEXT column as its value (an empty column is an empty dict)."""
    if isinstance(value, str):
        return json.loads(value) if value else {}
    return value if value is not None else {}


def decode(row: Row) -> dict[str, Any]:
    out = dict(row)
    for col in JSON_COLUMNS:
        value = out.get(col)
        if isinstance(value, str):
            out[col] = json.loads(value) if value else {}
    return out


def encode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for col in JSON_COLUMNS:
        if col in out and not isinstance(out[col], str):
            out[col] = json.dumps(out[col])
    return out


async def get(db: Executor, uuid: str, *, include_deleted: bool = False) -> dict[str, Any]:
    sql = "SELECT * FROM instances WHERE uuid = $1"
    if not include_deleted:
        sql += " AND deleted = 0"
    row = await db.fetchrow(sql, uuid)
    if row is None:
        raise InstanceNotFound(uuid)
    return decode(row)


async def on_host(db: Executor, host: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT * FROM instances WHERE host = $1 AND deleted = 0", host)
    return [decode(r) for r in rows]


async def update(
    db: Executor,
    uuid: str,
    values: dict[str, Any],
    expected_task_state: list[str | None] | None = None,
    expected_vm_state: list[str] | None = None,
    *,
    host: str | None = None,
) -> dict[str, Any]:
    """Apply `values` only if the row is still in an expected state (and, given `host`, still
    on that host: otherwise it is gone for that host); raise otherwise."""
    values = encode({**values, "updated_at": time.time()})
    expected: dict[str, Any] = {}
    if expected_task_state is not None:
        expected["task_state"] = list(expected_task_state)
    if expected_vm_state is not None:
        expected["vm_state"] = list(expected_vm_state)
    key: dict[str, Any] = {"uuid": uuid, "deleted": 0}
    if host is not None:
        key["host"] = host
    row = await conditional_update(db, "instances", key, values, expected or None)
    if row is not None:
        return decode(row)
    current = await get(db, uuid)  # raises InstanceNotFound when it is gone
    if host is not None and current["host"] != host:
        raise InstanceNotFound(uuid)
    if expected_task_state is not None and current["task_state"] not in expected_task_state:
        raise UnexpectedState(uuid, "task_state", current["task_state"], expected_task_state)
    raise UnexpectedState(uuid, "vm_state", current["vm_state"], expected_vm_state)


async def add_fault(
    db: Executor, uuid: str, code: int, message: str, details: str = "", host: str | None = None
) -> None:
    await db.execute(
        "INSERT INTO instance_faults (instance_uuid, code, message, details, host, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        uuid, code, message[:255], details, host, time.time(),
    )


async def latest_fault(db: Executor, uuid: str) -> Row | None:
    return await db.fetchrow(
        "SELECT * FROM instance_faults WHERE instance_uuid = $1 ORDER BY id DESC LIMIT 1", uuid
    )


async def start_action(
    db: Executor, uuid: str, action: str, request_id: str, user_id: str | None,
    project_id: str | None,
) -> None:
    now = time.time()
    await db.execute(
        "INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id,"
        " start_time, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        uuid, action, request_id, user_id, project_id, now,
    )


async def action_event(
    db: Executor, uuid: str, request_id: str, event: str, phase: str, host: str | None = None,
    result: str | None = None, traceback: str | None = None, details: str | None = None,
) -> None:
    """Record the start or the finish of an event of the action `request_id` started."""
    action = await db.fetchrow(
        "SELECT id FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2"
        " ORDER BY id DESC LIMIT 1",
        uuid, request_id,
    )
    if action is None:
        return  # an action nobody recorded (e.g. a periodic task): nothing to attach to
    now = time.time()
    if phase == "start":
        await db.execute(
            "INSERT INTO instance_action_events (action_id, event, host, start_time)"
            " VALUES ($1, $2, $3, $4)",
            action["id"], event, host, now,
        )
    else:
        await db.execute(
            "UPDATE instance_action_events SET finish_time = $1, result = $2, traceback = $3,"
            " details = $4 WHERE action_id = $5 AND event = $6 AND finish_time IS NULL",
            now, result, traceback, details, action["id"], event,
        )
        message = "Error" if result == "Error" else None
        await db.execute(
            "UPDATE instance_actions SET finish_time = $1, updated_at = $1,"
            " message = COALESCE($2, message) WHERE id = $3",
            now, message, action["id"],
        )
