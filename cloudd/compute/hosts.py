"""The hosts' records: the `services` and `compute_nodes` tables (Nova's Service and ComputeNode).

Every statement on these tables lives here: registration and heartbeats (the conductor), the
scheduler's claims, releases and heals, and the reads of the health views (os-services,
os-hypervisors, availability zones, `cloudd manage service/host/status`, metrics). Rows come
out as frozen records decoded once: booleans as bool, JSON columns parsed.
"""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from cloudd.db import Executor, Row

COMPUTE_BINARY = "cloudd-compute"


@dataclass(frozen=True)
class Service:
    id: int
    uuid: str
    host: str
    binary: str
    topic: str
    report_count: int
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    version: int
    created_at: float
    updated_at: float | None
    last_seen_up: float | None

    @classmethod
    def from_row(cls, row: Row) -> Service:
        return cls(
            id=int(row["id"]), uuid=row["uuid"], host=row["host"], binary=row["binary"],
            topic=row["topic"], report_count=int(row["report_count"]),
            disabled=bool(row["disabled"]), disabled_reason=row["disabled_reason"],
            forced_down=bool(row["forced_down"]), version=int(row["version"]),
            created_at=row["created_at"], updated_at=row["updated_at"],
            last_seen_up=row["last_seen_up"],
        )

    @property
    def last_heard(self) -> float | None:
        """When the service last reported (its heartbeat, else its last update)."""
        return self.last_seen_up or self.updated_at

    def is_up(self, down_time: float, now: float | None = None) -> bool:
        """Nova's servicegroup DB driver: up when not forced down and heard from recently."""
        seen = self.last_heard
        return bool(not self.forced_down and seen and (now or time.time()) - seen <= down_time)


@dataclass(frozen=True)
class ComputeNode:
    id: int
    uuid: str
    service_id: int | None
    host: str
    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    cpu_info: dict[str, Any]
    supported_instances: list[Any]
    availability_zone: str
    host_ip: str | None
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    running_vms: int
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    disk_allocation_ratio: float
    reserved_host_memory_mb: int
    created_at: float
    updated_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> ComputeNode:
        return cls(
            id=int(row["id"]), uuid=row["uuid"], service_id=row["service_id"], host=row["host"],
            hypervisor_hostname=row["hypervisor_hostname"],
            hypervisor_type=row["hypervisor_type"],
            hypervisor_version=int(row["hypervisor_version"]),
            cpu_info=_json(row["cpu_info"], {}),
            supported_instances=_json(row["supported_instances"], []),
            availability_zone=row["availability_zone"], host_ip=row["host_ip"],
            vcpus=int(row["vcpus"]), memory_mb=int(row["memory_mb"]),
            local_gb=int(row["local_gb"]), vcpus_used=int(row["vcpus_used"]),
            memory_mb_used=int(row["memory_mb_used"]), local_gb_used=int(row["local_gb_used"]),
            running_vms=int(row["running_vms"]),
            cpu_allocation_ratio=float(row["cpu_allocation_ratio"]),
            ram_allocation_ratio=float(row["ram_allocation_ratio"]),
            disk_allocation_ratio=float(row["disk_allocation_ratio"]),
            reserved_host_memory_mb=int(row["reserved_host_memory_mb"]),
            created_at=row["created_at"], updated_at=row["updated_at"],
        )


def _json(value: Any, empty: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value else empty
    return value if value is not None else empty


# ----- services -------------------------------------------------------------------------------
async def services(db: Executor, *, binary: str | None = None,
                   order: str = "id") -> list[Service]:
    """Every service (of one binary), ordered by id or by host and binary."""
    by = {"id": "id", "host": 'host, "binary"'}[order]
    if binary is None:
        rows = await db.fetch(f"SELECT * FROM services ORDER BY {by}")
    else:
        rows = await db.fetch(f'SELECT * FROM services WHERE "binary" = $1 ORDER BY {by}', binary)
    return [Service.from_row(r) for r in rows]


async def service_by_uuid(db: Executor, uuid: str) -> Service | None:
    row = await db.fetchrow("SELECT * FROM services WHERE uuid = $1", uuid)
    return None if row is None else Service.from_row(row)


async def service_by_id(db: Executor, service_id: int) -> Service | None:
    row = await db.fetchrow("SELECT * FROM services WHERE id = $1", service_id)
    return None if row is None else Service.from_row(row)


async def service_on(db: Executor, host: str, binary: str) -> Service | None:
    row = await db.fetchrow('SELECT * FROM services WHERE host = $1 AND "binary" = $2',
                            host, binary)
    return None if row is None else Service.from_row(row)


async def set_disabled(db: Executor, service_id: int, disabled: bool,
                       reason: str | None) -> None:
    await db.execute("UPDATE services SET disabled = $1, disabled_reason = $2 WHERE id = $3",
                     int(disabled), reason, service_id)


async def set_forced_down(db: Executor, service_id: int, down: bool) -> None:
    await db.execute("UPDATE services SET forced_down = $1 WHERE id = $2", int(down), service_id)


async def register_service(db: Executor, host: str, binary: str, now: float) -> tuple[int, str]:
    """The service's (id, uuid), created at its first registration; a heartbeat otherwise."""
    row = await db.fetchrow(
        "SELECT id, uuid FROM services WHERE host = $1 AND \"binary\" = $2", host, binary)
    if row is None:
        row = await db.fetchrow(
            "INSERT INTO services (uuid, host, \"binary\", topic, created_at, updated_at,"
            " last_seen_up) VALUES ($1, $2, $3, 'compute', $4, $4, $4) RETURNING id, uuid",
            str(uuidlib.uuid4()), host, binary, now,
        )
        assert row is not None
    else:
        await db.execute(
            "UPDATE services SET updated_at = $1, last_seen_up = $1,"
            " report_count = report_count + 1 WHERE id = $2", now, row["id"],
        )
    return int(row["id"]), str(row["uuid"])


async def heartbeat(db: Executor, host: str, binary: str, now: float) -> None:
    await db.execute(
        "UPDATE services SET updated_at = $1, last_seen_up = $1, report_count = report_count + 1"
        " WHERE host = $2 AND \"binary\" = $3",
        now, host, binary,
    )


async def remove_host(db: Executor, service_id: int) -> None:
    """Forget a compute service and its nodes (run it in a transaction)."""
    await db.execute("DELETE FROM compute_nodes WHERE service_id = $1", service_id)
    await db.execute("DELETE FROM services WHERE id = $1", service_id)


# ----- compute nodes --------------------------------------------------------------------------
async def nodes(db: Executor, *, service_id: int | None = None) -> list[ComputeNode]:
    """Every compute node (of one service), in id order."""
    if service_id is None:
        rows = await db.fetch("SELECT * FROM compute_nodes ORDER BY id")
    else:
        rows = await db.fetch("SELECT * FROM compute_nodes WHERE service_id = $1 ORDER BY id",
                              service_id)
    return [ComputeNode.from_row(r) for r in rows]


async def node_owner(db: Executor, hypervisor_hostname: str) -> str | None:
    """The host that reports node `hypervisor_hostname`, if any."""
    owner = await db.fetchval("SELECT host FROM compute_nodes WHERE hypervisor_hostname = $1",
                              hypervisor_hostname)
    return None if owner is None else str(owner)


async def availability_zones(db: Executor) -> list[str]:
    """The distinct zones of the compute nodes, sorted."""
    rows = await db.fetch("SELECT DISTINCT availability_zone FROM compute_nodes"
                          " ORDER BY availability_zone")
    return [r["availability_zone"] for r in rows]


@dataclass(frozen=True)
class NodeValues:
    """What a host reports about one of its nodes at registration."""

    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    cpu_info: dict[str, Any]
    supported_instances: list[Any]
    host_ip: str | None
    vcpus: int
    memory_mb: int
    local_gb: int


async def upsert_node(db: Executor, service_id: int, host: str, zone: str, node: NodeValues,
                      ratios: tuple[float, float, float], reserved_mb: int, now: float) -> None:
    """Record a registering host's node (created with its reserved memory as used)."""
    values = (
        service_id, host, node.hypervisor_type, node.hypervisor_version,
        json.dumps(node.cpu_info), json.dumps(node.supported_instances),
        zone, node.host_ip, node.vcpus, node.memory_mb, node.local_gb,
        *ratios, reserved_mb, now, node.hypervisor_hostname,
    )
    updated = await db.execute(
        "UPDATE compute_nodes SET service_id = $1, host = $2, hypervisor_type = $3,"
        " hypervisor_version = $4, cpu_info = $5, supported_instances = $6,"
        " availability_zone = $7, host_ip = $8, vcpus = $9, memory_mb = $10, local_gb = $11,"
        " cpu_allocation_ratio = $12, ram_allocation_ratio = $13, disk_allocation_ratio = $14,"
        " reserved_host_memory_mb = $15, updated_at = $16 WHERE hypervisor_hostname = $17",
        *values,
    )
    if not updated:
        await db.execute(
            "INSERT INTO compute_nodes (service_id, host, hypervisor_type, hypervisor_version,"
            " cpu_info, supported_instances, availability_zone, host_ip, vcpus, memory_mb,"
            " local_gb, cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio,"
            " reserved_host_memory_mb, created_at, hypervisor_hostname, uuid, memory_mb_used)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
            " $17, $18, $15)",
            *values, str(uuidlib.uuid4()),
        )


async def update_node_size(db: Executor, host: str, hypervisor_hostname: str, vcpus: int,
                           memory_mb: int, local_gb: int) -> bool:
    """A host's new totals for its node; False when `host` has no such node."""
    updated = await db.execute(
        "UPDATE compute_nodes SET vcpus = $1, memory_mb = $2, local_gb = $3, updated_at = $4"
        " WHERE hypervisor_hostname = $5 AND host = $6",
        vcpus, memory_mb, local_gb, time.time(), hypervisor_hostname, host,
    )
    return bool(updated)


@dataclass(frozen=True)
class HostTotals:
    host: str
    nodes: int
    vcpus: int
    memory_mb: int
    running_vms: int


async def totals_by_host(db: Executor) -> list[HostTotals]:
    rows = await db.fetch(
        "SELECT n.host, COUNT(*) AS nodes, SUM(n.vcpus) AS vcpus, SUM(n.memory_mb) AS ram,"
        " SUM(n.running_vms) AS vms FROM compute_nodes n GROUP BY n.host ORDER BY n.host")
    return [HostTotals(r["host"], int(r["nodes"]), int(r["vcpus"]), int(r["ram"]), int(r["vms"]))
            for r in rows]


# ----- the scheduler's claims -----------------------------------------------------------------
CLAIM_SQL = """
UPDATE compute_nodes SET vcpus_used = vcpus_used + $2, memory_mb_used = memory_mb_used + $3,
    local_gb_used = local_gb_used + $4, running_vms = running_vms + 1, updated_at = $5
WHERE hypervisor_hostname = $1
  AND vcpus_used + $2 <= vcpus * cpu_allocation_ratio
  AND memory_mb_used + $3 <= memory_mb * ram_allocation_ratio
  AND local_gb_used + $4 <= local_gb * disk_allocation_ratio
RETURNING id
"""

RELEASE_SQL = """
UPDATE compute_nodes SET vcpus_used = vcpus_used - $2, memory_mb_used = memory_mb_used - $3,
    local_gb_used = local_gb_used - $4, running_vms = running_vms - 1, updated_at = $5
WHERE hypervisor_hostname = $1
"""

# Usage recomputed from the instances that really hold resources: repairs any drift left by a
# crash between a claim and its instance update.
HEAL_SQL = """
UPDATE compute_nodes SET
    vcpus_used = (SELECT COALESCE(SUM(i.vcpus), 0) FROM instances i
                  WHERE i.node = compute_nodes.hypervisor_hostname AND i.deleted = 0),
    memory_mb_used = reserved_host_memory_mb + (SELECT COALESCE(SUM(i.memory_mb), 0)
                  FROM instances i
                  WHERE i.node = compute_nodes.hypervisor_hostname AND i.deleted = 0),
    local_gb_used = (SELECT COALESCE(SUM(i.root_gb + i.ephemeral_gb), 0) FROM instances i
                  WHERE i.node = compute_nodes.hypervisor_hostname AND i.deleted = 0),
    running_vms = (SELECT COUNT(*) FROM instances i
                  WHERE i.node = compute_nodes.hypervisor_hostname AND i.deleted = 0)
"""
HEAL_HOST_SQL = HEAL_SQL + " WHERE host = $1"

HOSTS_SQL = """
SELECT n.*, s.disabled AS service_disabled, s.forced_down AS service_forced_down,
       s.last_seen_up AS service_last_seen_up
FROM compute_nodes n JOIN services s ON s.id = n.service_id
"""


async def claim(db: Executor, node: str, vcpus: int, memory_mb: int, disk_gb: int) -> bool:
    """Take room on `node` only while it stays within its allocation ratios."""
    return await db.fetchrow(CLAIM_SQL, node, vcpus, memory_mb, disk_gb, time.time()) is not None


async def release(db: Executor, node: str, vcpus: int, memory_mb: int, disk_gb: int) -> None:
    await db.execute(RELEASE_SQL, node, vcpus, memory_mb, disk_gb, time.time())


async def heal(db: Executor, host: str | None = None) -> None:
    """Recompute node usage (of one host, or all) from the instances that hold resources."""
    if host is None:
        await db.execute(HEAL_SQL)
    else:
        await db.execute(HEAL_HOST_SQL, host)


async def node_rows_for_scheduler(db: Executor) -> list[Row]:
    """Transitional: every node's raw row with its service's disabled/forced_down/last_seen_up,
    as `HostState.from_row` reads it (decoded there, once per cache refresh)."""
    return await db.fetch(HOSTS_SQL)
