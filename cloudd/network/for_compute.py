"""What the compute API asks of the network model when it creates a server: its ``networks``
request turned into network uuids for the builder's allocation (refused for anything unknown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cloudd import errors
from cloudd.db import Executor
from cloudd.network import ipam


class NetworkRequestRefused(errors.BadRequest, ValueError):
    """A ``networks`` entry the cloud cannot honour; the message is the API's 400."""


@dataclass(frozen=True)
class NetworkRef:
    """One requested NIC: a network, a port or a fixed IP (Nova's requested_networks entry)."""

    uuid: str | None = None
    port: str | None = None
    fixed_ip: str | None = None


RequestedNetworks = Literal["auto", "none"] | Sequence[NetworkRef] | None


async def requested_networks(db: Executor, project_id: str,
                             networks: RequestedNetworks) -> list[str] | None:
    """``"auto"``/absent -> None (every network the project may use), ``"none"`` -> [] (no
    NIC), ``[{"uuid"}...]`` -> those networks, each one the project may use."""
    if networks is None or networks == "auto":
        return None
    if networks == "none":
        return []
    visible = {row["uuid"] for row in await ipam.list_networks(db, project_id)}
    uuids: list[str] = []
    for entry in networks:
        if entry.port:
            # Ports are made by the build, one per NIC; there are no free ports to plug.
            raise NetworkRequestRefused(f"Port {entry.port} could not be found.")
        if entry.fixed_ip:
            raise NetworkRequestRefused("Requesting a specific fixed_ip is not supported.")
        if not entry.uuid or entry.uuid not in visible:
            raise NetworkRequestRefused(f"Network {entry.uuid} could not be found.")
        if entry.uuid not in uuids:
            uuids.append(entry.uuid)
    return uuids
