"""Floating IPs: pools made by ``cloudd manage floating create``, allocated to projects (quota),
associated to one fixed IP, disassociated, released (Nova's ``FloatingIP`` mixin)."""

from __future__ import annotations

import ipaddress
import time
import uuid as uuidlib
from typing import Any

from cloudd.db import Database, Executor
from cloudd.network.ipam import NetworkError

DEFAULT_POOL = "nova"
DEFAULT_QUOTA = 10


class FloatingIpNotFound(NetworkError):
    pass


class FloatingIpAssociated(NetworkError):
    pass


class NoMoreFloatingIps(NetworkError):
    pass


class FloatingIpQuotaExceeded(NetworkError):
    pass


async def create_floating_ips(db: Database, ip_range: str, pool: str = DEFAULT_POOL,
                              interface: str | None = None) -> int:
    """``nova-manage floating create --ip_range=CIDR``: every host address of the range."""
    net = ipaddress.ip_network(ip_range, strict=False)
    addresses = [net.network_address] if net.num_addresses == 1 else list(net.hosts())
    now = time.time()
    async with db.transaction() as tx:
        for address in addresses:
            await tx.execute(
                "INSERT INTO floating_ips (uuid, address, pool, interface, created_at)"
                " VALUES ($1, $2, $3, $4, $5)", str(uuidlib.uuid4()), str(address), pool, interface, now)
    return len(addresses)


async def list_pools(db: Executor) -> list[str]:
    return [r["pool"] for r in await db.fetch("SELECT DISTINCT pool FROM floating_ips ORDER BY pool")]


_VIEW = (
    "SELECT fl.id, fl.uuid, fl.address, fl.pool, fl.project_id, fl.host, fl.interface,"
    " fl.fixed_ip_id, f.address AS fixed_address, f.instance_uuid, v.uuid AS vif_id"
    " FROM floating_ips fl LEFT JOIN fixed_ips f ON f.id = fl.fixed_ip_id"
    " LEFT JOIN virtual_interfaces v ON v.id = f.virtual_interface_id"
)


async def list_floating_ips(db: Executor, project_id: str | None) -> list[dict[str, Any]]:
    """A project's floating IPs (``None``: every allocated one, for admins)."""
    if project_id is None:
        return await db.fetch(_VIEW + " WHERE fl.project_id IS NOT NULL ORDER BY fl.id")
    return await db.fetch(_VIEW + " WHERE fl.project_id = $1 ORDER BY fl.id", project_id)


async def get_floating_ip(db: Executor, key: str, project_id: str | None) -> dict[str, Any]:
    """By uuid or address; another project's address is "not found", never "forbidden"."""
    row = await db.fetchrow(_VIEW + " WHERE (fl.uuid = $1 OR fl.address = $1)"
                            " AND fl.project_id IS NOT NULL", key)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        raise FloatingIpNotFound(f"floating IP {key} not found")
    return row


async def allocate_floating_ip(db: Database, project_id: str, pool: str | None = None,
                               quota: int = DEFAULT_QUOTA, address: str | None = None
                               ) -> dict[str, Any]:
    pool = pool or DEFAULT_POOL
    async with db.transaction() as tx:
        used = await tx.fetchval("SELECT count(*) FROM floating_ips WHERE project_id = $1", project_id)
        if quota >= 0 and int(used or 0) >= quota:
            raise FloatingIpQuotaExceeded(f"Quota exceeded for floating_ips: {quota} allowed")
        query = "SELECT id FROM floating_ips WHERE project_id IS NULL AND pool = $1"
        args: list[Any] = [pool]
        if address:
            query += " AND address = $2"
            args.append(address)
        for row in await tx.fetch(query + " ORDER BY id", *args):
            if await tx.execute(
                    "UPDATE floating_ips SET project_id = $1, updated_at = $2"
                    " WHERE id = $3 AND project_id IS NULL", project_id, time.time(), row["id"]):
                return await get_floating_ip(tx, await _uuid(tx, row["id"]), None)
    raise NoMoreFloatingIps(f"no more floating IPs in pool {pool}")


async def _uuid(db: Executor, floating_id: int) -> str:
    return str(await db.fetchval("SELECT uuid FROM floating_ips WHERE id = $1", floating_id))


async def associate(db: Database, floating: dict[str, Any], fixed_address: str,
                    project_id: str | None) -> dict[str, Any]:
    """Link to a fixed IP of one of the project's instances; returns the fixed IP's row."""
    fixed = await db.fetchrow(
        "SELECT f.*, i.project_id AS instance_project FROM fixed_ips f"
        " JOIN instances i ON i.uuid = f.instance_uuid WHERE f.address = $1 AND f.allocated = 1",
        fixed_address)
    if fixed is None or (project_id is not None and fixed["instance_project"] != project_id):
        raise NetworkError(f"fixed IP {fixed_address} is not allocated to a server of the project")
    await db.execute(
        "UPDATE floating_ips SET fixed_ip_id = $1, host = $2, updated_at = $3 WHERE id = $4",
        fixed["id"], fixed["host"], time.time(), floating["id"])
    return fixed


async def disassociate(db: Database, floating: dict[str, Any]) -> None:
    await db.execute("UPDATE floating_ips SET fixed_ip_id = NULL, updated_at = $1 WHERE id = $2",
                     time.time(), floating["id"])


async def release(db: Database, floating: dict[str, Any]) -> None:
    if floating["fixed_ip_id"] is not None:
        raise FloatingIpAssociated(f"floating IP {floating['address']} is still associated")
    await db.execute("UPDATE floating_ips SET project_id = NULL, host = NULL, updated_at = $1"
                     " WHERE id = $2", time.time(), floating["id"])
