"""Instance faults, actions and action events (Nova's InstanceFault, InstanceAction)."""

from __future__ import annotations

import time

from cloudd.compute.instances.records import InstanceAction, InstanceActionEvent, InstanceFault
from cloudd.db import Database, Executor


async def add_fault(
    db: Executor, uuid: str, code: int, message: str, details: str = "", host: str | None = None
) -> None:
    await db.execute(
        "INSERT INTO instance_faults (instance_uuid, code, message, details, host, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        uuid, code, message[:255], details, host, time.time(),
    )


async def latest_fault(db: Executor, uuid: str) -> InstanceFault | None:
    row = await db.fetchrow(
        "SELECT * FROM instance_faults WHERE instance_uuid = $1 ORDER BY id DESC LIMIT 1", uuid
    )
    return None if row is None else InstanceFault.from_row(row)


async def latest_faults(db: Executor, uuids: list[str]) -> dict[str, InstanceFault]:
    """The newest fault of each of `uuids`, in one query."""
    if not uuids:
        return {}
    marks = ", ".join(f"${n}" for n in range(1, len(uuids) + 1))
    rows = await db.fetch(
        f"SELECT * FROM instance_faults WHERE instance_uuid IN ({marks}) ORDER BY id", *uuids)
    # later ids overwrite earlier ones
    return {row["instance_uuid"]: InstanceFault.from_row(row) for row in rows}


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


async def withdraw_action(db: Database, uuid: str, request_id: str) -> None:
    """Forget the action `request_id` recorded on `uuid` (and its events): the API refused the
    request after all (its host could not be reached), so it never happened."""
    async with db.transaction() as tx:
        await tx.execute(
            "DELETE FROM instance_action_events WHERE action_id IN (SELECT id FROM"
            " instance_actions WHERE instance_uuid = $1 AND request_id = $2)", uuid, request_id)
        await tx.execute(
            "DELETE FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2",
            uuid, request_id)


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


async def actions_of(db: Executor, uuid: str) -> list[InstanceAction]:
    """The instance's actions, newest first."""
    rows = await db.fetch(
        "SELECT * FROM instance_actions WHERE instance_uuid = $1 ORDER BY start_time DESC, id DESC",
        uuid)
    return [InstanceAction.from_row(r) for r in rows]


async def action_of_request(db: Executor, uuid: str, request_id: str) -> InstanceAction | None:
    row = await db.fetchrow(
        "SELECT * FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2"
        " ORDER BY id DESC LIMIT 1", uuid, request_id)
    return None if row is None else InstanceAction.from_row(row)


async def events_of(db: Executor, action_id: int) -> list[InstanceActionEvent]:
    rows = await db.fetch("SELECT * FROM instance_action_events WHERE action_id = $1 ORDER BY id",
                          action_id)
    return [InstanceActionEvent.from_row(r) for r in rows]


async def event_open_on(db: Executor, uuid: str, request_id: str, event: str, host: str) -> bool:
    """Whether `host` started this event of the action `request_id` and has not finished it."""
    found = await db.fetchval(
        "SELECT COUNT(*) FROM instance_action_events e JOIN instance_actions a"
        " ON a.id = e.action_id WHERE a.instance_uuid = $1 AND a.request_id = $2"
        " AND e.event = $3 AND e.host = $4 AND e.finish_time IS NULL",
        uuid, request_id, event, host)
    return bool(found)
