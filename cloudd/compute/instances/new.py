"""A new instance row (the create path's INSERT) and what the create reads of other instances."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from cloudd.compute.instances.records import (
    FlavorSnapshot,
    Instance,
    SavedRequest,
    encode,
    from_row,
)
from cloudd.db import Executor


@dataclass(frozen=True)
class NewInstance:
    """The columns a create writes; the field order is the INSERT's."""

    uuid: str
    name: str
    hostname: str
    project_id: str
    user_id: str
    image_ref: str
    flavor: FlavorSnapshot
    instance_type_id: int
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    vm_state: str
    task_state: str
    availability_zone: str | None
    key_name: str | None
    key_data: str | None
    user_data: str | None
    metadata: dict[str, str]
    reservation_id: str
    launch_index: int
    description: str | None
    scheduler_hints: dict[str, Any]
    request_spec: SavedRequest
    access_ip_v4: str | None
    access_ip_v6: str | None
    created_at: float


INSERT_SQL = (
    "INSERT INTO instances (uuid, name, hostname, project_id, user_id, image_ref,"
    " flavor, instance_type_id, vcpus, memory_mb, root_gb, ephemeral_gb, vm_state,"
    " task_state, power_state, availability_zone, key_name, key_data, user_data,"
    " metadata, reservation_id, launch_index, description, scheduler_hints,"
    " request_spec, access_ip_v4, access_ip_v6, created_at, updated_at) VALUES ($1,"
    " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $16, $17, $18,"
    " $19, $20, $21, $22, $23, $24, $25, $26, $27, $27) RETURNING *"
)


async def insert(tx: Executor, new: NewInstance) -> Instance:
    """Insert the row (power_state 0, updated_at = created_at)."""
    values = encode({f.name: getattr(new, f.name) for f in fields(new)})
    row = await tx.fetchrow(INSERT_SQL, *values.values())
    assert row is not None
    return from_row(row)


async def set_system_metadata(tx: Executor, instance_id: int,
                              system_metadata: dict[str, Any]) -> Instance:
    """Replace the row's system_metadata."""
    values = encode({"system_metadata": system_metadata})
    row = await tx.fetchrow("UPDATE instances SET system_metadata = $1 WHERE id = $2"
                            " RETURNING *", values["system_metadata"], instance_id)
    assert row is not None
    return from_row(row)
