"""Floating IPs: pools made by ``cloudd manage floating create``, allocated to projects (quota),
associated to one fixed IP, disassociated, released (Nova's ``FloatingIP`` mixin)."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudd import errors
from cloudd.db import Database, Executor
from cloudd.network import store
from cloudd.network.ipam import NetworkError
from cloudd.network.store import floating as floating_store
from cloudd.network.store.floating import FloatingIp as FloatingIp

DEFAULT_POOL = "nova"
DEFAULT_QUOTA = 10


class FloatingIpNotFound(errors.NotFound, NetworkError):
    pass


class FloatingIpAssociated(errors.Conflict, NetworkError):
    pass


class NoMoreFloatingIps(errors.Conflict, NetworkError):
    pass


class FloatingIpQuotaExceeded(errors.QuotaExceeded, NetworkError):
    pass


async def create_floating_ips(db: Database, ip_range: str, pool: str = DEFAULT_POOL,
                              interface: str | None = None) -> int:
    """``nova-manage floating create --ip_range=CIDR``: every host address of the range."""
    net = ipaddress.ip_network(ip_range, strict=False)
    addresses = [net.network_address] if net.num_addresses == 1 else list(net.hosts())
    await floating_store.insert_pool(db, [str(a) for a in addresses], pool, interface)
    return len(addresses)


async def list_pools(db: Executor) -> list[str]:
    return await floating_store.pool_names(db)


async def list_floating_ips(db: Executor, project_id: str | None) -> list[FloatingIp]:
    """A project's floating IPs (``None``: every allocated one, for admins)."""
    return await floating_store.allocated(db, project_id)


async def get_floating_ip(db: Executor, key: str, project_id: str | None) -> FloatingIp:
    """By uuid or address; another project's address is "not found", never "forbidden"."""
    row = await floating_store.allocated_one(db, key)
    if row is None or (project_id is not None and row.project_id != project_id):
        raise FloatingIpNotFound(f"floating IP {key} not found")
    return row


async def allocate_floating_ip(db: Database, project_id: str, pool: str | None = None,
                               quota: int = DEFAULT_QUOTA, address: str | None = None
                               ) -> FloatingIp:
    pool = pool or DEFAULT_POOL
    async with db.transaction() as tx:
        used = await floating_store.project_count(tx, project_id)
        if quota >= 0 and used >= quota:
            raise FloatingIpQuotaExceeded(f"Quota exceeded for floating_ips: {quota} allowed")
        for floating_id in await floating_store.free_ids(tx, pool, address):
            if await floating_store.take(tx, floating_id, project_id):
                return await get_floating_ip(tx, await floating_store.uuid_of(tx, floating_id),
                                             None)
    raise NoMoreFloatingIps(f"no more floating IPs in pool {pool}")


async def associate(db: Database, floating: FloatingIp, fixed_address: str,
                    project_id: str | None) -> dict[str, Any]:
    """Link to a fixed IP of one of the project's instances; returns the fixed IP's row."""
    fixed = await store.allocated_fixed_ip(db, fixed_address)
    if fixed is None or (project_id is not None and fixed["instance_project"] != project_id):
        raise NetworkError(f"fixed IP {fixed_address} is not allocated to a server of the project")
    await floating_store.link(db, floating.id, fixed["id"], fixed["host"])
    return fixed


async def disassociate(db: Database, floating: FloatingIp) -> None:
    await floating_store.unlink(db, floating.id)


async def release(db: Database, floating: FloatingIp) -> None:
    if floating.associated:
        raise FloatingIpAssociated(f"floating IP {floating.address} is still associated")
    await floating_store.give_back(db, floating.id)
