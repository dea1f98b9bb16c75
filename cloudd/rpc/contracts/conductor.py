"""The conductor's RPC contract: what agents may ask of the controller's database.

Agents hold no database connection; every read and write they need is one of these methods,
called as ``conductor.<name>`` over the agent's websocket. Instance rows travel as
``Instance`` records (``cloudd.rpc.contracts.instance``).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from cloudd.rpc.contracts.compute import HostResources
from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance
from cloudd.rpc.errors import RpcError
from cloudd.vocab import power_state, states

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
    # The cloud's id (cloudd.db.cloud): the agent marks its libvirt domains with it.
    cloud_id: str = Field("", pattern=r"^[0-9a-f-]{0,36}$")


class Heartbeat(BaseModel):
    host: str
    binary: str = "cloudd-compute"


class InstanceRef(BaseModel):
    uuid: str


class HostRef(BaseModel):
    host: str


class InstanceRecord(BaseModel):
    instance: Instance


class InstanceList(BaseModel):
    instances: list[Instance]


# What an agent's state machine moves an instance to; never deleted (that is
# instance_destroyed), never offloaded (instance_offloaded) and never back to scheduling (that
# is the conductor's).
AGENT_VM_STATES = frozenset({
    states.ACTIVE, states.BUILDING, states.PAUSED, states.SUSPENDED, states.STOPPED,
    states.RESCUED, states.RESIZED, states.ERROR, states.SOFT_DELETED, states.SHELVED,
})
AGENT_TASK_STATES = frozenset({
    None, states.SPAWNING, states.IMAGE_UPLOADING, states.REBUILD_SPAWNING,
    states.RESIZE_MIGRATING, states.POWERING_OFF, states.SHELVING_IMAGE_PENDING_UPLOAD,
    states.SHELVING_IMAGE_UPLOADING, states.SHELVING_OFFLOADING,
})


class AgentInstanceValues(BaseModel):
    """The instance columns an agent may change, with their types: what the compute manager
    writes (grep ``update(`` in cloudd/agent/compute). Ownership (project_id, user_id, host, node),
    user data, keys and deletion are not here, so a call naming them fails validation and
    nothing is written. The flavor columns and system_metadata are further checked against
    what the controller recorded for a resize (cloudd.conductor.authz).

    A record holds only the columns it was given (``model_fields_set``): a column left out is
    not written, while one given as None is written NULL. Its dump (the wire format) is those
    columns only, and it is frozen so that nothing sets a column behind that record's back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vm_state: str | None = None
    task_state: str | None = None
    power_state: int | None = None
    launched_at: float | None = None
    launched_on: str | None = None
    system_metadata: dict[str, Any] | None = None
    vcpus: int | None = Field(None, ge=0)
    memory_mb: int | None = Field(None, ge=0)
    root_gb: int | None = Field(None, ge=0)
    ephemeral_gb: int | None = Field(None, ge=0)
    flavor: FlavorSnapshot | None = None
    instance_type_id: int | None = None

    @field_validator("vm_state")
    @classmethod
    def _vm_state(cls, value: str | None) -> str | None:
        if value not in AGENT_VM_STATES:
            raise ValueError(f"an agent may not set vm_state {value!r}")
        return value

    @field_validator("task_state")
    @classmethod
    def _task_state(cls, value: str | None) -> str | None:
        if value not in AGENT_TASK_STATES:
            raise ValueError(f"an agent may not set task_state {value!r}")
        return value

    @field_validator("power_state")
    @classmethod
    def _power_state(cls, value: int | None) -> int | None:
        if value not in power_state.STATE_MAP:
            raise ValueError(f"unknown power_state {value!r}")
        return value

    @field_validator("launched_at")
    @classmethod
    def _launched_at(cls, value: float | None) -> float | None:
        if value is None or not math.isfinite(value) or value <= 0:
            raise ValueError("launched_at must be a time (seconds since the epoch)")
        return value

    @model_serializer(mode="wrap")
    def _given_columns_only(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The columns left out must not travel as None: the controller would write them NULL.
        dumped: dict[str, Any] = dump(self)
        return {column: value for column, value in dumped.items()
                if column in self.model_fields_set}

    def columns(self) -> dict[str, Any]:
        """The given columns with their typed values (a flavor stays a ``FlavorSnapshot``), as
        the instance store writes them."""
        return {column: getattr(self, column) for column in self.model_fields_set}

    def merged(self, later: AgentInstanceValues) -> AgentInstanceValues:
        """These columns and ``later``'s, ``later`` winning where both give one (validated)."""
        return AgentInstanceValues.model_validate({**self.columns(), **later.columns()})


class ReportKey(BaseModel):
    """The idempotency key of an agent's report: the operation it belongs to (one run of a
    compute action on the agent) and its place in that operation. The agent sends a report
    again with the same key after a lost link; the conductor applies a key once (it remembers
    the keys it applied, per host: ``agent_reports``)."""

    model_config = ConfigDict(frozen=True)

    operation: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    sequence: int = Field(ge=0, le=2**31 - 1)  # bounded: a host cannot make a key of any size

    def scoped(self, host: str) -> str:
        """The key as stored: under the reporting host, so no host can spend another's keys."""
        return f"{host}/{self.operation}/{self.sequence}"


class InstanceUpdate(BaseModel):
    """Change columns of one instance, if it is still in the expected state.

    ``expected_task_state`` / ``expected_vm_state``: when set (a list; ``None`` inside the list
    means "no task"), the update applies only if the row's column is one of them, and otherwise
    the call fails with ``UnexpectedTaskState`` / ``UnexpectedVMState`` (Nova's semantics).
    ``values``: the columns to write, of ``AgentInstanceValues`` only (sent as the given ones).
    """

    uuid: str
    values: AgentInstanceValues
    expected_task_state: list[str | None] | None = None
    expected_vm_state: list[str] | None = None
    key: ReportKey | None = None  # applied once per key (an older agent sends none)


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
    key: ReportKey | None = None


class FaultCreate(BaseModel):
    uuid: str
    code: int = 500
    message: str
    details: str = ""
    host: str | None = None
    key: ReportKey | None = None


class BuildFailedReport(BaseModel):
    """A build failed on this host: release its claim and reschedule (or give up)."""

    uuid: str
    host: str
    node: str | None = None
    reason: str
    request_id: str | None = None
    key: ReportKey | None = None


class InstanceDestroyed(BaseModel):
    """The guest is gone from the host: mark the row deleted and release the resources."""

    uuid: str
    host: str | None = None


class InstanceOffloaded(InstanceDestroyed):
    """A shelved guest is gone from the host: the row becomes shelved_offloaded, without a
    host, and the host's resources are released."""


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


class InstanceNotOnHost(InstanceNotFoundError):
    """The instance is not the calling host's (never was, or moved on): for that host it is
    gone, so its actions stop quietly, as for a deleted instance."""

    code = "instance_not_on_host"
