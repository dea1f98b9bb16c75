"""What the Compute API asks of the network model when it creates a server: its ``networks``
request turned into network uuids for the builder's allocation (400 for anything unknown)."""

from __future__ import annotations

from typing import Any

from cloudd.db import Executor
from cloudd.network import ipam


class NetworkRequestRefused(ValueError):
    """A ``networks`` entry the cloud cannot honour; the message is the 400's."""


async def requested_networks(db: Executor, project_id: str, networks: Any) -> list[str] | None:
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
