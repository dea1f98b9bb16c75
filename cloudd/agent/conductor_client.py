"""The agent's typed handle on the conductor: one method per ``conductor.*`` RPC method.

``ConductorAPI`` is the interface the compute manager depends on, so tests can hand it an
in-memory double. ``ConductorClient`` implements it over an ``RpcPeer``; the agent swaps
``peer`` when it reconnects, so the manager keeps one client for its whole life.
"""

from __future__ import annotations

from typing import Protocol

from cloudd.rpc import RpcConnectionLost, RpcPeer
from cloudd.rpc.contracts.compute import HostResources
from cloudd.rpc.contracts.conductor import (
    PREFIX,
    ActionEvent,
    AgentInstanceValues,
    BuildFailedReport,
    FaultCreate,
    Heartbeat,
    HostRef,
    InstanceDestroyed,
    InstanceList,
    InstanceRecord,
    InstanceRef,
    InstanceUpdate,
    NodeUpdate,
    Registered,
    RegisterHost,
)
from cloudd.rpc.contracts.instance import Instance


class ConductorAPI(Protocol):
    async def register_host(self, request: RegisterHost) -> Registered: ...

    async def heartbeat(self, request: Heartbeat) -> None: ...

    async def instance_get(self, uuid: str) -> Instance: ...

    async def instances_on_host(self, host: str) -> list[Instance]: ...

    async def instance_update(
        self,
        uuid: str,
        values: AgentInstanceValues,
        expected_task_state: list[str | None] | None = None,
        expected_vm_state: list[str] | None = None,
    ) -> Instance: ...

    async def action_event(self, event: ActionEvent) -> None: ...

    async def fault_create(self, fault: FaultCreate) -> None: ...

    async def build_failed(self, report: BuildFailedReport) -> None: ...

    async def instance_destroyed(self, uuid: str, host: str | None) -> None: ...

    async def node_update(self, host: str, node: HostResources) -> None: ...


class ConductorClient:
    """``ConductorAPI`` over RPC. Errors are the conductor's (``UnexpectedTaskState``,
    ``InstanceNotFoundError``, ...) or the link's (``RpcConnectionLost``, ``RpcTimeout``)."""

    def __init__(self, peer: RpcPeer | None = None) -> None:
        self.peer = peer

    def _peer(self) -> RpcPeer:
        if self.peer is None:
            raise RpcConnectionLost("not connected to the controller")
        return self.peer

    async def register_host(self, request: RegisterHost) -> Registered:
        return await self._peer().call(PREFIX + "register_host", request, Registered)

    async def heartbeat(self, request: Heartbeat) -> None:
        await self._peer().call(PREFIX + "heartbeat", request)

    async def instance_get(self, uuid: str) -> Instance:
        record = await self._peer().call(
            PREFIX + "instance_get", InstanceRef(uuid=uuid), InstanceRecord
        )
        return record.instance

    async def instances_on_host(self, host: str) -> list[Instance]:
        found = await self._peer().call(
            PREFIX + "instances_on_host", HostRef(host=host), InstanceList
        )
        return found.instances

    async def instance_update(
        self,
        uuid: str,
        values: AgentInstanceValues,
        expected_task_state: list[str | None] | None = None,
        expected_vm_state: list[str] | None = None,
    ) -> Instance:
        update = InstanceUpdate(
            uuid=uuid, values=values, expected_task_state=expected_task_state,
            expected_vm_state=expected_vm_state,
        )
        record = await self._peer().call(PREFIX + "instance_update", update, InstanceRecord)
        return record.instance

    async def action_event(self, event: ActionEvent) -> None:
        await self._peer().call(PREFIX + "action_event", event)

    async def fault_create(self, fault: FaultCreate) -> None:
        await self._peer().call(PREFIX + "fault_create", fault)

    async def build_failed(self, report: BuildFailedReport) -> None:
        await self._peer().call(PREFIX + "build_failed", report)

    async def instance_destroyed(self, uuid: str, host: str | None) -> None:
        await self._peer().call(
            PREFIX + "instance_destroyed", InstanceDestroyed(uuid=uuid, host=host)
        )

    async def node_update(self, host: str, node: HostResources) -> None:
        await self._peer().call(PREFIX + "node_update", NodeUpdate(host=host, node=node))
