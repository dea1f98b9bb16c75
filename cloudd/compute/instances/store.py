"""Instance rows in the database: read, change under expected-state checks.

Shared by the conductor (for agents) and the API (for users), so that both apply Nova's
expected_task_state rule the same way. Rows leave as `Instance` records (`records.from_row`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cloudd.compute.instances.records import (
    BuildToResume,
    HeldResources,
    Instance,
    InstanceNotFound,
    ProjectUsage,
    SavedRequest,
    UnexpectedState,
    decode_json,
    encode,
    from_row,
)
from cloudd.db import Executor, conditional_update
from cloudd.vocab import states

# system_metadata keys naming an image a host may fetch for its instance (shelve, rescue).
RECORDED_IMAGE_KEYS = ("shelved_image_id", "rescue_image_ref")


async def get(db: Executor, uuid: str, *, include_deleted: bool = False) -> Instance:
    sql = "SELECT * FROM instances WHERE uuid = $1"
    if not include_deleted:
        sql += " AND deleted = 0"
    row = await db.fetchrow(sql, uuid)
    if row is None:
        raise InstanceNotFound(uuid)
    return from_row(row)


async def on_host(db: Executor, host: str) -> list[Instance]:
    rows = await db.fetch("SELECT * FROM instances WHERE host = $1 AND deleted = 0", host)
    return [from_row(r) for r in rows]


async def update(
    db: Executor,
    uuid: str,
    values: Mapping[str, Any],
    expected_task_state: list[str | None] | None = None,
    expected_vm_state: list[str] | None = None,
    *,
    host: str | None = None,
) -> Instance:
    """Apply `values` (columns of `Instance`, typed as its fields: `records.encode` writes
    them) only if the row is still in an expected state (and, given `host`, still on that
    host: otherwise it is gone for that host); raise otherwise."""
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
        return from_row(row)
    current = await get(db, uuid)  # raises InstanceNotFound when it is gone
    if host is not None and current.host != host:
        raise InstanceNotFound(uuid)
    if expected_task_state is not None and current.task_state not in expected_task_state:
        raise UnexpectedState(uuid, "task_state", current.task_state, expected_task_state)
    raise UnexpectedState(uuid, "vm_state", current.vm_state, expected_vm_state)


async def exists_on_host(db: Executor, uuid: str, host: str) -> bool:
    """Whether the live instance `uuid` runs on `host`."""
    count = await db.fetchval(
        "SELECT COUNT(*) FROM instances WHERE uuid = $1 AND host = $2 AND deleted = 0", uuid, host)
    return bool(count)


async def count_on_host(db: Executor, host: str) -> int:
    count = await db.fetchval(
        "SELECT COUNT(*) FROM instances WHERE host = $1 AND deleted = 0", host)
    return int(count or 0)


async def names_on_host(db: Executor, host: str) -> list[tuple[str, str]]:
    """(uuid, name) of the live instances on `host`, by name."""
    rows = await db.fetch(
        "SELECT uuid, name FROM instances WHERE host = $1 AND deleted = 0 ORDER BY name", host)
    return [(r["uuid"], r["name"]) for r in rows]


async def error_all_on_host(db: Executor, host: str) -> None:
    """Their host is gone: the live instances there can only be deleted, ERROR says so."""
    await db.execute(
        "UPDATE instances SET vm_state = 'error', task_state = NULL, updated_at = $2"
        " WHERE host = $1 AND deleted = 0", host, time.time())


async def project_of(db: Executor, uuid: str, *, include_deleted: bool = True) -> str | None:
    """The instance's project (None when there is no such row)."""
    sql = "SELECT project_id FROM instances WHERE uuid = $1"
    if not include_deleted:
        sql += " AND deleted = 0"
    project = await db.fetchval(sql, uuid)
    return None if project is None else str(project)


async def placed(db: Executor) -> list[tuple[str, str]]:
    """(uuid, node) of every live instance placed on a node."""
    rows = await db.fetch(
        "SELECT uuid, node FROM instances WHERE deleted = 0 AND node IS NOT NULL")
    return [(r["uuid"], r["node"]) for r in rows]


async def held_resources(db: Executor, uuid: str) -> HeldResources | None:
    """What the live instance holds on its node (None once it is deleted)."""
    row = await db.fetchrow(
        "SELECT node, vcpus, memory_mb, root_gb, ephemeral_gb FROM instances"
        " WHERE uuid = $1 AND deleted = 0", uuid)
    if row is None:
        return None
    return HeldResources(node=row["node"], vcpus=row["vcpus"], memory_mb=row["memory_mb"],
                         root_gb=row["root_gb"], ephemeral_gb=row["ephemeral_gb"])


async def mark_deleted_on_node(db: Executor, uuid: str, node: str, vm_state: str) -> bool:
    """Delete the row only while it still holds `node` ('' for none); whether it did."""
    now = time.time()
    return await db.fetchrow(
        "UPDATE instances SET deleted = 1, deleted_at = $1, terminated_at = $1,"
        " updated_at = $1, vm_state = $2, task_state = NULL, power_state = 0"
        " WHERE uuid = $3 AND deleted = 0 AND COALESCE(node, '') = $4 RETURNING id",
        now, vm_state, uuid, node,
    ) is not None


async def offload_from_node(db: Executor, uuid: str, node: str) -> bool:
    """A shelve's offload: the row leaves `node` (shelved_offloaded, no host), only while it
    still holds that node and is offloading; whether it did."""
    return await db.fetchrow(
        "UPDATE instances SET vm_state = $1, task_state = NULL, power_state = 0, host = NULL,"
        " node = NULL, updated_at = $2 WHERE uuid = $3 AND deleted = 0 AND node = $4"
        " AND task_state = $5 RETURNING id", states.SHELVED_OFFLOADED, time.time(), uuid, node,
        states.SHELVING_OFFLOADING) is not None


async def builds_waiting(db: Executor, vm_state: str, task_state: str,
                         host: str | None = None) -> list[BuildToResume]:
    """Live instances in (vm_state, task_state), e.g. builds never started (on `host`)."""
    sql = ("SELECT uuid, host, node, request_spec FROM instances WHERE deleted = 0"
           " AND vm_state = $1 AND task_state = $2")
    args: list[Any] = [vm_state, task_state]
    if host is not None:
        sql += " AND host = $3"
        args.append(host)
    rows = await db.fetch(sql, *args)
    return [BuildToResume(uuid=r["uuid"], host=r["host"], node=r["node"],
                          request_spec=SavedRequest.model_validate(decode_json(r["request_spec"])))
            for r in rows]


async def project_usage(db: Executor, project_id: str,
                        user_id: str | None = None) -> ProjectUsage:
    """Live instances of the project (of one user in it) and the cores and RAM they hold."""
    sql = ("SELECT COUNT(*) AS n, COALESCE(SUM(vcpus), 0) AS cores, COALESCE(SUM(memory_mb), 0)"
           " AS ram FROM instances WHERE project_id = $1 AND deleted = 0")
    args = [project_id]
    if user_id is not None:
        sql, args = sql + " AND user_id = $2", [project_id, user_id]
    row = await db.fetchrow(sql, *args)
    assert row is not None
    return ProjectUsage(int(row["n"]), int(row["cores"]), int(row["ram"]))


async def count_by_vm_state(db: Executor) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT vm_state, COUNT(*) AS n FROM instances WHERE deleted = 0 GROUP BY vm_state")
    return {str(r["vm_state"]): int(r["n"]) for r in rows}


async def images_of_host(db: Executor, host: str) -> set[str]:
    """Every image the live instances on `host` boot or may be told to boot: their image,
    kernel and ramdisk, and the shelved or rescue image the controller recorded for them."""
    rows = await db.fetch(
        "SELECT image_ref, kernel_id, ramdisk_id, system_metadata FROM instances"
        " WHERE host = $1 AND deleted = 0", host)
    found: set[str] = set()
    for row in rows:
        found.update(str(row[k]) for k in ("image_ref", "kernel_id", "ramdisk_id") if row[k])
        recorded = decode_json(row["system_metadata"])
        found.update(str(recorded[k]) for k in RECORDED_IMAGE_KEYS if recorded.get(k))
    return found


