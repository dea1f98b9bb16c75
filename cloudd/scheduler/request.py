"""What the scheduler is asked to place: Nova's RequestSpec / filter_properties, as one model.

The service layer builds a `RequestSpec` from the instance rows, the flavor, the image and the
user's scheduler hints; the drivers and filters only read it (the driver works on a private copy
when it must record hosts picked earlier in the same request).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class FlavorSpec(BaseModel):
    """The instance type asked for (Nova's `instance_type`)."""

    name: str | None = None
    memory_mb: int = Field(ge=0)
    vcpus: int = Field(ge=0)
    root_gb: int = Field(default=0, ge=0)
    ephemeral_gb: int = Field(default=0, ge=0)
    swap: int = Field(default=0, ge=0, description="MB, as in Nova")
    extra_specs: dict[str, str] = Field(default_factory=dict)

    @property
    def disk_mb(self) -> int:
        """Local disk the instance needs: root + ephemeral (GB) plus swap (MB), like DiskFilter."""
        return (self.root_gb + self.ephemeral_gb) * 1024 + self.swap


class ImageSpec(BaseModel):
    """The image's scheduling-relevant metadata.

    `properties` holds Glance image properties: `architecture`, `hypervisor_type`, `vm_mode`
    (and optionally `hypervisor_version_requires`, e.g. ">= 6000").
    """

    id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    min_ram: int = Field(default=0, ge=0)
    min_disk: int = Field(default=0, ge=0)


def _as_uuid_list(value: Any) -> Any:
    """Nova accepts a single uuid or a list for same_host/different_host."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


class SchedulerHints(BaseModel):
    """`os:scheduler_hints` from the API request; unknown hints are kept and ignored."""

    model_config = ConfigDict(extra="allow")

    same_host: list[str] = Field(default_factory=list)
    different_host: list[str] = Field(default_factory=list)
    group: str | None = None

    @field_validator("same_host", "different_host", mode="before")
    @classmethod
    def _coerce_uuid_list(cls, value: Any) -> Any:
        return _as_uuid_list(value)


class InstanceGroupSpec(BaseModel):
    """The server group the instances join, with the hosts its members already run on."""

    uuid: str | None = None
    name: str | None = None
    policy: Literal["affinity", "anti-affinity"]
    hosts: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)


class RetrySpec(BaseModel):
    """Nova's `filter_properties['retry']`.

    `num_attempts` counts this attempt too (1 on the first scheduling pass); the caller
    increments it and appends the failed host to `hosts` before asking again.
    """

    num_attempts: int = Field(default=1, ge=1)
    hosts: list[str] = Field(default_factory=list)


class RequestSpec(BaseModel):
    """One scheduling request for `num_instances` identical instances."""

    instance_uuids: list[str] = Field(default_factory=list)
    num_instances: int = Field(default=1, ge=1)
    project_id: str | None = None
    flavor: FlavorSpec
    image: ImageSpec = Field(default_factory=ImageSpec)
    availability_zone: str | None = None
    scheduler_hints: SchedulerHints = Field(default_factory=SchedulerHints)
    instance_group: InstanceGroupSpec | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)
    force_hosts: list[str] = Field(default_factory=list)
    force_nodes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _count_from_uuids(self) -> RequestSpec:
        """num_instances follows instance_uuids unless both are given, then they must agree."""
        if not self.instance_uuids:
            return self
        if "num_instances" not in self.model_fields_set:
            self.num_instances = len(self.instance_uuids)
        elif self.num_instances != len(self.instance_uuids):
            raise ValueError(
                f"num_instances={self.num_instances} but {len(self.instance_uuids)} "
                "instance_uuids were given"
            )
        return self

    def instance_uuid(self, index: int) -> str | None:
        """The uuid of the index-th instance of this request, if the caller named them."""
        if index < len(self.instance_uuids):
            return self.instance_uuids[index]
        return None
