"""Lists of instances for the APIs' views, as `Instance` records."""

from __future__ import annotations

from typing import Any, Literal

from cloudd.compute.instances.records import Instance, from_row
from cloudd.db import Executor
from cloudd.vocab import states


async def paging_mark(db: Executor, uuid: str) -> tuple[float, int] | None:
    """(created_at, id) of instance `uuid`, where a page after it starts."""
    row = await db.fetchrow("SELECT created_at, id FROM instances WHERE uuid = $1", uuid)
    return None if row is None else (row["created_at"], int(row["id"]))


async def live_rows(db: Executor, *, project_id: str | None, all_projects: bool = False,
                    changed_since: float | None = None, changed_before: float | None = None,
                    after: tuple[float, int] | None = None,
                    limit: int | None = None,
                    deleted: Literal["live", "any", "only"] = "live") -> list[Instance]:
    """Live instances of `project_id` (of every project with `all_projects`; a None project
    has none), changed since (and before), newest first; `after` is a `paging_mark`.
    `deleted`: "any" adds the deleted ones (Nova's changes-since), "only" lists those alone
    (an admin's deleted=1)."""
    where = {"live": "deleted = 0", "any": "1 = 1", "only": "deleted != 0"}[deleted]
    sql, args = f"SELECT * FROM instances WHERE {where}", list[Any]()
    if not all_projects:
        sql, args = sql + " AND project_id = $1", [project_id]
    if changed_since is not None:
        sql, args = sql + f" AND updated_at >= ${len(args) + 1}", [*args, changed_since]
    if changed_before is not None:
        sql, args = sql + f" AND updated_at <= ${len(args) + 1}", [*args, changed_before]
    if after is not None:
        n = len(args)
        sql += f" AND (created_at < ${n + 1} OR (created_at = ${n + 1} AND id < ${n + 2}))"
        args += [after[0], after[1]]
    sql += " ORDER BY created_at DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [from_row(r) for r in await db.fetch(sql, *args)]


async def launched_rows(db: Executor, start: float, end: float,
                        project_id: str | None = None) -> list[Instance]:
    """Instances that ran during [start, end) (of a project), in id order."""
    sql = ("SELECT * FROM instances WHERE launched_at IS NOT NULL AND launched_at < $1"
           " AND (terminated_at IS NULL OR terminated_at > $2)")
    args: list[Any] = [end, start]
    if project_id is not None:
        sql += " AND project_id = $3"
        args.append(project_id)
    return [from_row(r) for r in await db.fetch(sql + " ORDER BY id", *args)]


async def project_rows(db: Executor, project_id: str,
                       deleted_after: float) -> list[Instance]:
    """The project's instances, live or deleted after `deleted_after`, oldest first."""
    rows = await db.fetch(
        "SELECT * FROM instances WHERE project_id = $1 AND (deleted = 0 OR deleted_at > $2)"
        " ORDER BY created_at, id", project_id, deleted_after)
    return [from_row(r) for r in rows]


async def reservation_rows(db: Executor, project_id: str,
                           reservation_id: str) -> list[Instance]:
    """The project's instances of one reservation (live or deleted), by launch index."""
    rows = await db.fetch("SELECT * FROM instances WHERE project_id = $1 AND"
                          " reservation_id = $2 ORDER BY launch_index", project_id, reservation_id)
    return [from_row(r) for r in rows]


async def soft_deleted_before(db: Executor, cutoff: float) -> list[Instance]:
    """Soft-deleted instances, idle, whose soft delete (deleted_at) is older than `cutoff`."""
    rows = await db.fetch(
        "SELECT * FROM instances WHERE deleted = 0 AND vm_state = $1 AND task_state IS NULL"
        " AND deleted_at < $2 ORDER BY deleted_at", states.SOFT_DELETED, cutoff)
    return [from_row(r) for r in rows]


async def in_state(db: Executor, vm_state: str) -> list[Instance]:
    """Live instances in `vm_state`, oldest first."""
    rows = await db.fetch("SELECT * FROM instances WHERE deleted = 0 AND vm_state = $1"
                          " ORDER BY created_at, id", vm_state)
    return [from_row(r) for r in rows]
