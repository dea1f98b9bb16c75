"""The conductor's RPC contract: what agents may ask of the controller's database.

Agents hold no database connection; every read and write they need is one of these methods,
called as ``conductor.<name>`` over the agent's websocket. Instance rows travel as plain dicts
(the columns of the ``instances`` table, JSON columns decoded).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cloudd.compute.drivers.base import HostResources
from cloudd.rpc.errors import RpcError

PREFIX = "conductor."


class RegisterHost(BaseModel):
    host: str
    binary: str = "cloudd-compute"
    availability_zone: str = "nova"
    nodes: list[HostResources]


class Registered(BaseModel):
    service_id: int
    service_uuid: str
    report_interval: float


class Heartbeat(BaseModel):
    host: str
    binary: str = "cloudd-compute"


class InstanceRef(BaseModel):
    uuid: str


class HostRef(BaseModel):
    host: str


class InstanceRecord(BaseModel):
    instance: dict[str, Any]


class InstanceList(BaseModel):
    instances: list[dict[str, Any]]


class InstanceUpdate(BaseModel):
    """Change columns of one instance, if it is still in the expected state.

    ``expected_task_state`` / ``expected_vm_state``: when set (a list; ``None`` inside the list
    means "no task"), the update applies only if the row's column is one of them, and otherwise
    the call fails with ``UnexpectedTaskState`` / ``UnexpectedVMState`` (Nova's semantics).
    """

    uuid: str
    values: dict[str, Any]
    expected_task_state: list[str | None] | None = None
    expected_vm_state: list[str] | None = None


class ActionEvent(BaseModel):
    """Start or finish an event of an instance action (Nova's ``instance_action_events``)."""

    uuid: str
    request_id: str
    event: str
    phase: str = Field(pattern="^(start|finish)$")
    host: str | None = None
    result: str | None = None  # "Success" | "Error" on finish
    traceback: str | None = None
    details: str | None = None


class FaultCreate(BaseModel):
    uuid: str
    code: int = 500
    message: str
    details: str = ""
    host: str | None = None


class BuildFailedReport(BaseModel):
    """A build failed on this host: release its claim and reschedule (or give up)."""

    uuid: str
    host: str
    node: str | None = None
    reason: str
    request_id: str | None = None


class InstanceDestroyed(BaseModel):
    """The guest is gone from the host: mark the row deleted and release the resources."""

    uuid: str
    host: str | None = None


class NodeUpdate(BaseModel):
    """The agent's periodic resource report for one node (totals only; usage is claimed)."""

    host: str
    node: HostResources


class SnapshotDone(BaseModel):
    image_id: str
    size: int
    checksum: str
    path: str


class UnexpectedTaskState(RpcError):
    """The instance was not in the expected task_state: another action got there first."""

    code = "unexpected_task_state"


class UnexpectedVMState(RpcError):
    code = "unexpected_vm_state"


class InstanceNotFoundError(RpcError):
    code = "instance_not_found"
