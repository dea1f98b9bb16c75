"""The network record (issue 17, item 2): a ``networks`` row as the APIs read it. The network
family's other statements still hand rows (``dict``s) to IPAM, the host state and
``NetworkSpec``, which is what ``allocation.list_networks`` serves; the front door turns them
into this record (``network_record``) before any API sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudd.db import Executor
from cloudd.network.store import allocation


@dataclass(frozen=True)
class Network:
    """Nova's Network: one subnet (``cidr``) on a bridge, with its DHCP range start, DNS
    servers, VLAN (VLANManager), owning project (None: shared) and network host (None: every
    host serves it, multi_host)."""
    id: int
    uuid: str
    label: str
    cidr: str
    netmask: str
    broadcast: str
    gateway: str
    dhcp_start: str
    bridge: str
    bridge_interface: str | None
    vlan: int | None
    multi_host: bool
    dns1: str | None
    dns2: str | None
    project_id: str | None
    host: str | None
    created_at: float


def network_record(row: dict[str, Any]) -> Network:
    vlan = row["vlan"]
    return Network(
        id=int(row["id"]), uuid=str(row["uuid"]), label=str(row["label"]), cidr=str(row["cidr"]),
        netmask=str(row["netmask"]), broadcast=str(row["broadcast"]),
        gateway=str(row["gateway"]), dhcp_start=str(row["dhcp_start"]), bridge=str(row["bridge"]),
        bridge_interface=row["bridge_interface"], vlan=None if vlan is None else int(vlan),
        multi_host=bool(row["multi_host"]), dns1=row["dns1"], dns2=row["dns2"],
        project_id=row["project_id"], host=row["host"], created_at=float(row["created_at"]))


async def visible(db: Executor, project_id: str | None) -> list[Network]:
    """Every live network (None), or those a project may plug servers into (its own and the
    shared ones), by id."""
    return [network_record(r) for r in await allocation.list_networks(db, project_id)]
