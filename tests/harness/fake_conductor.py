"""An in-memory conductor double for a compute manager driven alone: `Instance` records in a
dict, Nova's expected-state rule enforced as the real conductor does, every report kept for
assertions. Tests hand rows in and read them back as dicts (`add`, `row`)."""

from __future__ import annotations

import asyncio
from typing import Any

from cloudd.rpc.contracts.compute import HostResources
from cloudd.rpc.contracts.conductor import (
    ActionEvent,
    AgentInstanceValues,
    BuildFailedReport,
    FaultCreate,
    Heartbeat,
    InstanceNotFoundError,
    InstanceUpdate,
    Registered,
    RegisterHost,
    UnexpectedTaskState,
    UnexpectedVMState,
)
from cloudd.rpc.contracts.instance import Instance

from .rows import Row, as_row


class FakeConductor:
    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.events: list[ActionEvent] = []
        self.faults: list[FaultCreate] = []
        self.build_failures: list[BuildFailedReport] = []
        self.destroyed: list[str] = []
        self.node_updates: list[tuple[str, HostResources]] = []
        self.heartbeats: list[Heartbeat] = []
        self.registrations: list[RegisterHost] = []

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        instance = Instance.model_validate(row)
        self.instances[instance.uuid] = instance
        return row

    def row(self, uuid: str) -> Row:
        return as_row(self.instances[uuid])

    def set_state(self, uuid: str, vm_state: str | None = None, task_state: str | None = None
                  ) -> None:
        """What the controller's API does before it casts: the starting task_state."""
        current = self.instances[uuid]
        self.instances[uuid] = current.model_copy(update={
            "vm_state": current.vm_state if vm_state is None else vm_state,
            "task_state": task_state})

    def events_of(self, uuid: str) -> list[tuple[str, str, str | None]]:
        return [(e.event, e.phase, e.result) for e in self.events if e.uuid == uuid]

    # -- ConductorAPI --------------------------------------------------------------------

    async def register_host(self, request: RegisterHost) -> Registered:
        self.registrations.append(request)
        return Registered(service_id=1, service_uuid="svc-1", report_interval=10.0)

    async def heartbeat(self, request: Heartbeat) -> None:
        self.heartbeats.append(request)

    async def instance_get(self, uuid: str) -> Instance:
        return self._get(uuid)

    async def instances_on_host(self, host: str) -> list[Instance]:
        return [r for r in self.instances.values() if r.host == host]

    async def instance_update(
        self, uuid: str, values: AgentInstanceValues,
        expected_task_state: list[str | None] | None = None,
        expected_vm_state: list[str] | None = None,
    ) -> Instance:
        await asyncio.sleep(0)  # a round trip: lets other tasks run, as the real RPC would
        # What the real conductor receives: the update as sent, validated again on arrival (it
        # refuses the columns an agent may not write).
        sent = InstanceUpdate(uuid=uuid, values=values).model_dump(mode="json")
        columns = InstanceUpdate.model_validate(sent).values.columns()
        row = self._get(uuid)
        if expected_task_state is not None and row.task_state not in expected_task_state:
            raise UnexpectedTaskState(
                f"task_state is {row.task_state}, expected {expected_task_state}",
                {"actual": row.task_state})
        if expected_vm_state is not None and row.vm_state not in expected_vm_state:
            raise UnexpectedVMState(f"vm_state is {row.vm_state}")
        # validated again, as the conductor's write and read-back would type it
        updated = Instance.model_validate({**row.model_dump(), **columns})
        self.instances[uuid] = updated
        return updated

    async def action_event(self, event: ActionEvent) -> None:
        self.events.append(event)

    async def fault_create(self, fault: FaultCreate) -> None:
        self.faults.append(fault)

    async def build_failed(self, report: BuildFailedReport) -> None:
        self.build_failures.append(report)

    async def instance_destroyed(self, uuid: str, host: str | None) -> None:
        self._get(uuid)
        del self.instances[uuid]
        self.destroyed.append(uuid)

    async def instance_offloaded(self, uuid: str, host: str) -> None:
        row = self._get(uuid)
        self.instances[uuid] = row.model_copy(update={
            "vm_state": "shelved_offloaded", "task_state": None, "host": None, "node": None})

    async def node_update(self, host: str, node: HostResources) -> None:
        self.node_updates.append((host, node))

    def _get(self, uuid: str) -> Instance:
        row = self.instances.get(uuid)
        if row is None:
            raise InstanceNotFoundError(f"Instance {uuid} could not be found.")
        return row
