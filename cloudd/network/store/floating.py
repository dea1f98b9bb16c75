"""The network repository's floating IP life cycle: the pool's rows, a project's allocations,
the link to a fixed IP (the rules — quota, pools, ownership — stay in ``cloudd.network.floating``)."""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from cloudd.db import Database, Executor


@dataclass(frozen=True)
class FloatingIp:
    """An allocated floating IP (Nova's FloatingIP) with what it is associated to: its fixed
    IP's row id and address, that address's server and port (virtual interface); the last
    four are None while it is not associated."""
    id: int
    uuid: str
    address: str
    pool: str
    project_id: str | None
    host: str | None
    interface: str | None
    fixed_ip_id: int | None
    fixed_address: str | None
    instance_uuid: str | None
    vif_id: str | None

    @property
    def associated(self) -> bool:
        return self.fixed_ip_id is not None


def _floating_ip(row: dict[str, Any]) -> FloatingIp:
    fixed = row["fixed_address"]
    return FloatingIp(id=int(row["id"]), uuid=str(row["uuid"]), address=str(row["address"]),
                      pool=str(row["pool"]), project_id=row["project_id"], host=row["host"],
                      interface=row["interface"], fixed_ip_id=row["fixed_ip_id"],
                      fixed_address=None if fixed is None else str(fixed),
                      instance_uuid=row["instance_uuid"], vif_id=row["vif_id"])

_VIEW = (
    "SELECT fl.id, fl.uuid, fl.address, fl.pool, fl.project_id, fl.host, fl.interface,"
    " fl.fixed_ip_id, f.address AS fixed_address, f.instance_uuid, v.uuid AS vif_id"
    " FROM floating_ips fl LEFT JOIN fixed_ips f ON f.id = fl.fixed_ip_id"
    " LEFT JOIN virtual_interfaces v ON v.id = f.virtual_interface_id"
)


async def insert_pool(db: Database, addresses: list[str], pool: str,
                      interface: str | None) -> None:
    """New floating IPs, all or none."""
    now = time.time()
    async with db.transaction() as tx:
        for address in addresses:
            await tx.execute(
                "INSERT INTO floating_ips (uuid, address, pool, interface, created_at)"
                " VALUES ($1, $2, $3, $4, $5)", str(uuidlib.uuid4()), address, pool, interface, now)


async def pool_names(db: Executor) -> list[str]:
    return [r["pool"] for r in await db.fetch("SELECT DISTINCT pool FROM floating_ips ORDER BY pool")]


async def allocated(db: Executor, project_id: str | None) -> list[FloatingIp]:
    """A project's floating IPs (``None``: every allocated one) with their fixed IP, server and
    port, by creation."""
    if project_id is None:
        rows = await db.fetch(_VIEW + " WHERE fl.project_id IS NOT NULL ORDER BY fl.id")
    else:
        rows = await db.fetch(_VIEW + " WHERE fl.project_id = $1 ORDER BY fl.id", project_id)
    return [_floating_ip(r) for r in rows]


async def allocated_one(db: Executor, key: str) -> FloatingIp | None:
    """An allocated floating IP by uuid or address, as ``allocated`` gives them."""
    row = await db.fetchrow(_VIEW + " WHERE (fl.uuid = $1 OR fl.address = $1)"
                            " AND fl.project_id IS NOT NULL", key)
    return None if row is None else _floating_ip(row)


async def project_count(db: Executor, project_id: str) -> int:
    return int(await db.fetchval(
        "SELECT count(*) FROM floating_ips WHERE project_id = $1", project_id) or 0)


async def free_ids(db: Executor, pool: str, address: str | None = None) -> list[int]:
    """The pool's unallocated floating IPs (or the one with that address), by creation."""
    query = "SELECT id FROM floating_ips WHERE project_id IS NULL AND pool = $1"
    args: list[Any] = [pool]
    if address:
        query += " AND address = $2"
        args.append(address)
    return [int(r["id"]) for r in await db.fetch(query + " ORDER BY id", *args)]


async def take(db: Executor, floating_id: int, project_id: str) -> bool:
    """Allocate to the project if still free (False: another request took it first)."""
    return bool(await db.execute(
        "UPDATE floating_ips SET project_id = $1, updated_at = $2"
        " WHERE id = $3 AND project_id IS NULL", project_id, time.time(), floating_id))


async def uuid_of(db: Executor, floating_id: int) -> str:
    return str(await db.fetchval("SELECT uuid FROM floating_ips WHERE id = $1", floating_id))


async def link(db: Executor, floating_id: int, fixed_ip_id: int, host: str | None) -> None:
    await db.execute(
        "UPDATE floating_ips SET fixed_ip_id = $1, host = $2, updated_at = $3 WHERE id = $4",
        fixed_ip_id, host, time.time(), floating_id)


async def unlink(db: Executor, floating_id: int) -> None:
    await db.execute("UPDATE floating_ips SET fixed_ip_id = NULL, updated_at = $1 WHERE id = $2",
                     time.time(), floating_id)


async def give_back(db: Executor, floating_id: int) -> None:
    """Back to the pool (unallocated)."""
    await db.execute("UPDATE floating_ips SET project_id = NULL, host = NULL, updated_at = $1"
                     " WHERE id = $2", time.time(), floating_id)
