"""The instance family's records and errors, decoded once on the way out of the database.

`Instance` (with `FlavorSnapshot` and `SavedRequest`) is defined with the RPC contracts, which
carry it to the agents; this module is where a row becomes one (`from_row`) and where values
become columns again (`encode`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from cloudd import errors
from cloudd.db import Row
from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance, SavedRequest

__all__ = ["FlavorSnapshot", "Instance", "SavedRequest"]

JSON_COLUMNS = ("flavor", "metadata", "system_metadata", "scheduler_hints", "request_spec")
COLUMNS = frozenset(Instance.model_fields)


class InstanceNotFound(errors.NotFound):
    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(f"Instance {uuid} could not be found.")


class UnexpectedState(errors.Conflict):
    """The row was not in the expected vm_state/task_state (another action won the race)."""

    def __init__(self, uuid: str, column: str, actual: Any, expected: Any) -> None:
        self.uuid, self.column, self.actual, self.expected = uuid, column, actual, expected
        super().__init__(
            f"Instance {uuid}: unexpected {column} {actual!r}, expecting {expected!r}"
        )


def decode_json(value: Any) -> Any:
    """A JSON TEXT column as its value (an empty column is an empty dict)."""
    if isinstance(value, str):
        return json.loads(value) if value else {}
    return value if value is not None else {}


def from_row(row: Row) -> Instance:
    """The one decoding of an instance row: JSON columns parsed, every column typed."""
    values = dict(row)
    for col in JSON_COLUMNS:
        if col in values:
            values[col] = decode_json(values[col])
    return Instance.model_validate(values)


def encode(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values as the database takes them: records and mappings as JSON text, booleans
    as 0/1. Only columns of `Instance` (a misspelt one fails here, before any SQL)."""
    unknown = set(values) - COLUMNS
    if unknown:
        raise KeyError(f"not instance columns: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for column, value in values.items():
        if isinstance(value, FlavorSnapshot):
            value = json.dumps(value.stored())
        elif isinstance(value, BaseModel):
            value = value.model_dump_json()
        elif column in JSON_COLUMNS and not isinstance(value, str):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = int(value)
        out[column] = value
    return out


@dataclass(frozen=True)
class InstanceFault:
    id: int
    instance_uuid: str
    code: int
    message: str
    details: str
    host: str | None
    created_at: float

    @classmethod
    def from_row(cls, row: Row) -> InstanceFault:
        return cls(id=int(row["id"]), instance_uuid=row["instance_uuid"], code=int(row["code"]),
                   message=row["message"], details=row["details"] or "", host=row["host"],
                   created_at=row["created_at"])


@dataclass(frozen=True)
class InstanceAction:
    id: int
    instance_uuid: str
    action: str
    request_id: str
    user_id: str | None
    project_id: str | None
    message: str | None
    start_time: float
    finish_time: float | None
    updated_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> InstanceAction:
        return cls(id=int(row["id"]), instance_uuid=row["instance_uuid"], action=row["action"],
                   request_id=row["request_id"], user_id=row["user_id"],
                   project_id=row["project_id"], message=row["message"],
                   start_time=row["start_time"], finish_time=row["finish_time"],
                   updated_at=row["updated_at"])


@dataclass(frozen=True)
class InstanceActionEvent:
    id: int
    action_id: int
    event: str
    host: str | None
    result: str | None
    traceback: str | None
    details: str | None
    start_time: float
    finish_time: float | None

    @classmethod
    def from_row(cls, row: Row) -> InstanceActionEvent:
        return cls(id=int(row["id"]), action_id=int(row["action_id"]), event=row["event"],
                   host=row["host"], result=row["result"], traceback=row["traceback"],
                   details=row["details"], start_time=row["start_time"],
                   finish_time=row["finish_time"])


@dataclass(frozen=True)
class BuildToResume:
    """A build in task_state scheduling (placed on `host`/`node` already, or not yet)."""

    uuid: str
    host: str | None
    node: str | None
    request_spec: SavedRequest


@dataclass(frozen=True)
class HeldResources:
    """The node an instance holds and the flavor sizes it holds there."""

    node: str | None
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int


@dataclass(frozen=True)
class ProjectUsage:
    instances: int
    cores: int
    ram: int
