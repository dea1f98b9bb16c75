"""A server create, from the references a client names to the rows the builder starts from.

`ServerCreateRequest` is what the REST and EC2 front ends translate their wire formats into:
references (a flavor id or name, an image uuid, a key name, networks, security groups, a server
group hint) and plain values. `resolve` turns it into a `BuildRequest` (the flavor record, the
image's properties, the key's public key, network uuids), refusing with the domain errors below;
`build` inserts the rows, in the quota's transaction, and hands them to the conductor.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cloudd import errors
from cloudd.compute import flavors, instances, keypairs, quota, server_groups
from cloudd.compute.instances import FlavorSnapshot, Instance
from cloudd.db import Database, Executor
from cloudd.image.for_compute import BootImageError, check_boot_files, check_boot_image
from cloudd.image.records import Image
from cloudd.network import secgroups
from cloudd.network.for_compute import NetworkRequestRefused, RequestedNetworks, requested_networks
from cloudd.scheduler.request import (
    FlavorSpec,
    ImageSpec,
    InstanceGroupSpec,
    RequestSpec,
    SchedulerHints,
)
from cloudd.vocab import states
from cloudd.vocab.instance_name import SYSTEM_METADATA_KEY, render_instance_name


# ----- domain errors (the API layers map them to their wire errors) ----------------------------
class CreateRefused(errors.BadRequest):
    """The request names something this cloud cannot use; the message is the Compute API's 400."""


class FlavorNotFound(CreateRefused):
    """No flavor of that id or name that the project may use."""

    def __init__(self, ref: str | int) -> None:
        self.ref = ref
        super().__init__(f"Flavor {ref} could not be found.")


class FlavorDisabled(CreateRefused):
    def __init__(self, flavor: flavors.Flavor) -> None:
        self.flavor = flavor
        super().__init__(f"Flavor {flavor.flavorid} is disabled.")


class ImageRefused(CreateRefused):
    """The image cannot boot this server (BootImageError's message)."""


class KeyPairNotFound(CreateRefused):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Invalid key_name provided: {name}")


class NetworkRefused(CreateRefused):
    """A requested network, port or fixed IP the cloud cannot honour."""


class GroupNotFound(CreateRefused):
    """The `group` scheduler hint names no server group of the project (or is no uuid)."""


# ----- the request ------------------------------------------------------------------------------
@dataclass
class ServerCreateRequest:
    """A create as the client asked for it: references, resolved by `resolve`."""

    name: str
    project_id: str
    user_id: str
    is_admin: bool = False
    flavor_ref: str | int | None = None  # a flavor id or a link ending in it ...
    flavor_name: str | None = None  # ... or its name (EC2's InstanceType)
    image_ref: str = ""  # the image's uuid ("" or another string: refused after the flavor)
    # kernel_id/ramdisk_id overriding the image's (EC2's KernelId/RamdiskId), checked at create.
    boot_files: dict[str, str] = field(default_factory=dict)
    key_name: str | None = None
    networks: RequestedNetworks = None
    # Security group names or uuids of the project (empty: its `default` group).
    security_groups: list[str] = field(default_factory=list)
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    user_data: str | None = None
    description: str | None = None
    availability_zone: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)  # `group`: a server group uuid
    min_count: int = 1
    max_count: int = 1


@dataclass
class BuildRequest:
    """A resolved create request: what `resolve` makes of a ServerCreateRequest (trusted
    callers holding a flavor row may fill it in themselves; nothing here is checked again)."""

    name: str
    flavor: flavors.Flavor | Mapping[str, Any]  # a record, or a flavors row
    project_id: str
    user_id: str
    image_ref: str = ""
    image_properties: dict[str, Any] = field(default_factory=dict)
    min_count: int = 1
    max_count: int = 1
    key_name: str | None = None
    key_data: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    # Network uuids the builder allocates on (None: every network the project may use; []: none).
    networks: list[str] | None = None
    # Security group names or uuids of the project (empty: its `default` group).
    security_groups: list[str] = field(default_factory=list)
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None


class BuildScheduler(Protocol):
    """What a create needs of the conductor (ConductorService provides it)."""

    async def cloud_id(self) -> str: ...

    def schedule_build(self, uuids: list[str], spec: RequestSpec, request_id: str) -> None: ...


# ----- resolving references ---------------------------------------------------------------------
async def resolve(db: Executor, req: ServerCreateRequest) -> BuildRequest:
    """The BuildRequest `req` names, checked in Nova's order: flavor, image, key pair, metadata
    quota, networks, server group (security groups are found as the build starts)."""
    flavor = await _flavor(db, req)
    image = await boot_image(db, req.image_ref, req.project_id, req.is_admin, flavor.snapshot())
    image_ref = req.image_ref.lower()
    properties: dict[str, str] = dict(image.properties)
    if req.boot_files:
        properties.update(req.boot_files)
        try:
            await check_boot_files(db, properties, req.project_id)
        except BootImageError as exc:
            raise ImageRefused(str(exc)) from None
    key_data = None
    if req.key_name is not None:
        key = await keypairs.get(db, req.user_id, req.key_name)
        if key is None:
            raise KeyPairNotFound(req.key_name)
        key_data = key.public_key
    check_metadata_quota(req.metadata)
    try:
        networks = await requested_networks(db, req.project_id, req.networks)
    except NetworkRequestRefused as exc:
        raise NetworkRefused(str(exc)) from None
    hints = dict(req.scheduler_hints)
    if "group" in hints:
        hints["group"] = await _group_for_hint(db, hints["group"], req.project_id)
    return BuildRequest(
        name=req.name, flavor=flavor, project_id=req.project_id, user_id=req.user_id,
        image_ref=image_ref, image_properties=properties, min_count=req.min_count,
        max_count=req.max_count, key_name=req.key_name, key_data=key_data,
        user_data=req.user_data, metadata=req.metadata,
        availability_zone=req.availability_zone, scheduler_hints=hints,
        description=req.description, networks=networks, security_groups=req.security_groups,
        access_ip_v4=req.access_ip_v4, access_ip_v6=req.access_ip_v6)


async def _flavor(db: Executor, req: ServerCreateRequest) -> flavors.Flavor:
    if req.flavor_ref is not None:
        flavor = await usable_flavor(db, req.flavor_ref, req.project_id, req.is_admin)
    else:
        found = await flavors.get_by_name(db, req.flavor_name or "")
        if found is None or not await flavors.may_use(db, found, req.project_id, req.is_admin):
            raise FlavorNotFound(req.flavor_name or "")
        flavor = found
    if flavor.disabled:
        raise FlavorDisabled(flavor)
    return flavor


async def usable_flavor(db: Executor, ref: str | int, project_id: str | None,
                        is_admin: bool) -> flavors.Flavor:
    """The flavor an id or link names, if the project may use it (FlavorNotFound otherwise)."""
    flavor = await flavors.get(db, flavors.flavorid_of(ref))
    if flavor is None or not await flavors.may_use(db, flavor, project_id, is_admin):
        raise FlavorNotFound(ref)
    return flavor


async def boot_image(db: Executor, image_ref: str, project_id: str | None, is_admin: bool,
                     flavor: FlavorSnapshot) -> Image:
    """The image record `image_ref` (a uuid) names, if the project may boot it with a flavor
    of `flavor`'s size, its kernel and ramdisk included (ImageRefused otherwise)."""
    if not image_ref:
        raise ImageRefused("Missing imageRef attribute")
    if not _is_uuid(image_ref):
        raise ImageRefused(f"Invalid imageRef provided: {image_ref} is not a UUID.")
    try:
        return await check_boot_image(db, image_ref.lower(), project_id, is_admin,
                                      flavor.model_dump())
    except BootImageError as exc:
        raise ImageRefused(str(exc)) from None


def check_metadata_quota(metadata: Mapping[str, str]) -> None:
    """At most metadata_items keys (QuotaExceeded, Nova's message)."""
    limit = quota.DEFAULT_QUOTAS["metadata_items"]
    if len(metadata) > limit:
        raise quota.QuotaExceeded(
            {"metadata_items": len(metadata)}, {}, {"metadata_items": limit},
            message="Quota exceeded for metadata_items: maximum number of metadata items "
                    f"is {limit}.")


def _is_uuid(value: str) -> bool:
    try:
        return str(uuidlib.UUID(value)) == value.lower()
    except ValueError:
        return False


async def _group_for_hint(db: Executor, hint: Any, project_id: str) -> str:
    """The uuid of the server group a `group` scheduler hint names."""
    if not isinstance(hint, str) or not _is_uuid(hint):
        raise GroupNotFound(f"Invalid input for field/attribute group. Value: {hint!r} is not a "
                            "'uuid'")
    if not await server_groups.exists_in_project(db, hint.lower(), project_id):
        raise GroupNotFound(f"Instance group {hint} could not be found.")
    return hint.lower()


# ----- the build --------------------------------------------------------------------------------
async def build(db: Database, conductor: BuildScheduler, name_template: str, req: BuildRequest,
                request_id: str) -> list[Instance]:
    """Insert the rows (BUILD/scheduling), record the actions, start the build; return rows."""
    flavor = req.flavor if isinstance(req.flavor, flavors.Flavor) else \
        flavors.Flavor.from_row(req.flavor)
    flavor_view = flavor.snapshot()
    count = req.max_count
    reservation_id = "r-" + uuidlib.uuid4().hex[:8]
    spec = RequestSpec(
        project_id=req.project_id,
        flavor=FlavorSpec(name=flavor.name, memory_mb=flavor.memory_mb, vcpus=flavor.vcpus,
                          root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                          swap=flavor.swap, extra_specs=dict(flavor.extra_specs)),
        image=ImageSpec(id=req.image_ref or None, properties=req.image_properties),
        availability_zone=req.availability_zone,
        scheduler_hints=SchedulerHints.model_validate(req.scheduler_hints),
    )
    groups = await _security_groups(db, req)
    now = time.time()
    rows = []
    cloud_id = await conductor.cloud_id()
    async with db.transaction() as tx:
        # The quota check and the inserts are one transaction no other create of the
        # project can interleave with (quota.lock_project).
        await quota.lock_project(tx, req.project_id)
        count = await quota.allowed_instances(tx, req.project_id, flavor_view.model_dump(),
                                              req.min_count, count, req.user_id)
        uuids = spec.instance_uuids = [str(uuidlib.uuid4()) for _ in range(count)]
        spec.num_instances = count
        spec.instance_group = await _join_group(tx, req, uuids, now)
        for index, uuid in enumerate(uuids):
            name = req.name if count == 1 else f"{req.name}-{index + 1}"
            row = await instances.insert(tx, instances.NewInstance(
                uuid=uuid, name=name, hostname=_hostname(name), project_id=req.project_id,
                user_id=req.user_id, image_ref=req.image_ref, flavor=flavor_view,
                instance_type_id=flavor.id, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                vm_state=states.BUILDING, task_state=states.SCHEDULING,
                availability_zone=req.availability_zone, key_name=req.key_name,
                key_data=req.key_data, user_data=req.user_data, metadata=req.metadata,
                reservation_id=reservation_id, launch_index=index,
                description=req.description, scheduler_hints=req.scheduler_hints,
                request_spec=instances.SavedRequest(spec=spec.model_dump(),
                                                    request_id=request_id, networks=req.networks),
                access_ip_v4=req.access_ip_v4, access_ip_v6=req.access_ip_v6, created_at=now,
            ))
            row = await _name_domain(tx, row, name_template, cloud_id)
            rows.append(row)
            for group in groups:  # in its groups from the start: the firewall's members
                await secgroups.add_instance(tx, group, uuid)
            await instances.start_action(tx, uuid, "create", request_id, req.user_id,
                                         req.project_id)
    conductor.schedule_build(uuids, spec, request_id)
    return rows


async def _name_domain(tx: Executor, row: Instance, template: str, cloud_id: str) -> Instance:
    """Fix the instance's hypervisor name now (it needs the row's id): the agent names the
    domain with it and the API shows it, whatever the template says later."""
    name = render_instance_name(template, row.id, row.uuid, cloud_id)
    system_metadata = {**row.system_metadata, SYSTEM_METADATA_KEY: name}
    return await instances.set_system_metadata(tx, row.id, system_metadata)


async def _join_group(tx: Executor, req: BuildRequest, uuids: list[str],
                      now: float) -> InstanceGroupSpec | None:
    """Add the new instances to the `group` hint's server group (quota server_group_members);
    the scheduler's affinity filters get the group with the hosts its members run on."""
    group_uuid = req.scheduler_hints.get("group")
    if not group_uuid:
        return None
    group = await server_groups.get_in_project(tx, group_uuid, req.project_id)
    if group is None:
        raise GroupNotFound(f"Instance group {group_uuid} could not be found.")
    await quota.check_group_members(tx, req.project_id, group.id, len(uuids))
    members = await server_groups.live_members_and_hosts(tx, group.id)
    await server_groups.add_members(tx, group.id, uuids, now)
    if group.policy not in ("affinity", "anti-affinity"):
        return None  # the soft policies are weighers in Nova, not filters: no constraint here
    return InstanceGroupSpec(uuid=group.uuid, name=group.name, policy=group.policy,
                             hosts=sorted({m.host for m in members if m.host}),
                             members=[m.uuid for m in members])


async def _security_groups(db: Database, req: BuildRequest) -> list[secgroups.SecurityGroup]:
    """The groups a new instance joins (SecurityGroupNotFound for one the project lacks)."""
    await secgroups.ensure_default(db, req.project_id)  # outside the create's transaction
    found: dict[int, secgroups.SecurityGroup] = {}
    for key in req.security_groups or [secgroups.DEFAULT_GROUP]:
        group = await secgroups.get_group(db, key, req.project_id)
        found[group.id] = group
    return list(found.values())


def _hostname(name: str) -> str:
    """Nova's sanitize_hostname: lowercase, alphanumerics and dashes, at most 63 characters."""
    out = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name.lower()).strip("-")
    return out[:63] or "server"
