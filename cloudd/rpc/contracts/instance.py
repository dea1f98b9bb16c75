"""Nova's Instance object: one row of ``instances``, typed, as both processes hold it and the
RPC contracts carry it (a build's ``BuildInstance``, the conductor's ``InstanceRecord``).

It lives with the contracts because both sides import it and the contracts carry it; the
controller's repository (``cloudd.compute.instances``) is the only place that makes one from a
database row (``records.from_row``) or writes its values back (``records.encode``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FlavorSnapshot(BaseModel):
    """What an instance keeps of its flavor (the ``flavor`` column, and a resize's
    ``old_flavor`` / ``new_flavor`` in system_metadata): Nova's ``instance.flavor``. ``id`` is
    the flavors row's id, present once a resize has moved the instance to a new flavor."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    flavorid: str = ""
    name: str = ""
    memory_mb: int = 0
    vcpus: int = 0
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = Field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """The JSON the columns keep (``id`` only when it is known, as written before)."""
        return self.model_dump(exclude_none=True)


class SavedRequest(BaseModel):
    """The ``request_spec`` column: what the conductor needs to (re)try the build."""

    # The scheduler's RequestSpec, dumped (cloudd.scheduler.request reads it back).
    spec: dict[str, Any] | None = None
    request_id: str = ""
    networks: list[str] | None = None  # the networks the create asked for; None: all


class Instance(BaseModel):
    """The columns of ``instances`` (cloudd/db/migrations/0001_initial.sql), JSON decoded."""

    model_config = ConfigDict(frozen=True)

    id: int
    uuid: str
    name: str
    hostname: str = ""
    project_id: str
    user_id: str
    image_ref: str = ""
    kernel_id: str = ""
    ramdisk_id: str = ""
    flavor: FlavorSnapshot = Field(default_factory=FlavorSnapshot)
    instance_type_id: int | None = None
    vcpus: int
    memory_mb: int
    root_gb: int = 0
    ephemeral_gb: int = 0
    vm_state: str
    task_state: str | None = None
    power_state: int = 0
    host: str | None = None
    node: str | None = None
    launched_on: str | None = None
    availability_zone: str | None = None
    key_name: str | None = None
    key_data: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # Nova's system_metadata: the guest's name (``instance_name``) and, while a resize is in
    # progress, ``old_flavor`` / ``new_flavor`` (flavor snapshots) and ``old_vm_state``.
    system_metadata: dict[str, Any] = Field(default_factory=dict)
    config_drive: str = ""
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    locked: bool = False
    locked_by: str | None = None
    locked_reason: str | None = None
    reservation_id: str = ""
    launch_index: int = 0
    progress: int = 0
    description: str | None = None
    # The create's os:scheduler_hints as given (unknown hints kept; values are JSON).
    scheduler_hints: dict[str, Any] = Field(default_factory=dict)
    request_spec: SavedRequest = Field(default_factory=SavedRequest)
    created_at: float
    updated_at: float | None = None
    launched_at: float | None = None
    terminated_at: float | None = None
    deleted_at: float | None = None
    deleted: bool = False

    def current_flavor(self) -> FlavorSnapshot:
        """The flavor the instance runs with: the flavor column, its sizes from the size
        columns (which a resize moves first)."""
        return self.flavor.model_copy(update={
            "vcpus": self.vcpus, "memory_mb": self.memory_mb, "root_gb": self.root_gb,
            "ephemeral_gb": self.ephemeral_gb})
