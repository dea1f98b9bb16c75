"""The controller's compute API (Nova's compute/api.py): what the REST and EC2 front ends call.

Each action checks the instance's state (Nova's check_instance_state), moves it to the action's
task_state with a compare-and-swap (so two racing requests cannot both start), records an
instance action under the request id, and casts to the host's agent.
"""

from __future__ import annotations

import json
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from cloudd.api.image.records import image_info_fields
from cloudd.compute import instances, quota, states
from cloudd.compute import rpcapi as c
from cloudd.compute.drivers.base import ImageInfo
from cloudd.compute.manager_utils import current_flavor, json_dict
from cloudd.conductor.authz import check_console_target
from cloudd.conductor.manager import mark_deleted
from cloudd.conductor.service import ConductorService, HostUnavailable
from cloudd.core import ServiceHost
from cloudd.db import Database, Executor
from cloudd.db.service import DatabaseService
from cloudd.network import secgroups
from cloudd.scheduler.request import (
    FlavorSpec,
    ImageSpec,
    InstanceGroupSpec,
    RequestSpec,
    SchedulerHints,
)

LOG = logging.getLogger(__name__)


@dataclass
class BuildRequest:
    """A validated create request (the REST and EC2 layers fill it in)."""

    name: str
    flavor: dict[str, Any]  # a flavors row
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


# action name -> (state-table entry, task_state set before the cast, RPC method)
_ACTIONS: dict[str, tuple[str, str | None, str]] = {
    "stop": ("stop", states.POWERING_OFF, "stop_instance"),
    "start": ("start", states.POWERING_ON, "start_instance"),
    "pause": ("pause", states.PAUSING, "pause_instance"),
    "unpause": ("unpause", states.UNPAUSING, "unpause_instance"),
    "suspend": ("suspend", states.SUSPENDING, "suspend_instance"),
    "resume": ("resume", states.RESUMING, "resume_instance"),
    "confirmResize": ("confirm_resize", states.RESIZE_CONFIRMING, "confirm_resize"),
    "revertResize": ("revert_resize", states.RESIZE_REVERTING, "revert_resize"),
}


class ComputeAPI:
    def __init__(self, host: ServiceHost) -> None:
        self.host = host

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def conductor(self) -> ConductorService:
        return self.host.get(ConductorService)

    # ----- create ---------------------------------------------------------------------------
    async def create(self, req: BuildRequest, request_id: str) -> list[dict[str, Any]]:
        """Insert the rows (BUILD/scheduling), record the actions, start the build; return rows."""
        flavor = req.flavor
        count = req.max_count
        reservation_id = "r-" + uuidlib.uuid4().hex[:8]
        spec = RequestSpec(
            project_id=req.project_id,
            flavor=FlavorSpec(name=flavor["name"], memory_mb=flavor["memory_mb"],
                              vcpus=flavor["vcpus"], root_gb=flavor["root_gb"],
                              ephemeral_gb=flavor["ephemeral_gb"], swap=flavor["swap"],
                              extra_specs=instances.decode_json(flavor.get("extra_specs"))),
            image=ImageSpec(id=req.image_ref or None, properties=req.image_properties),
            availability_zone=req.availability_zone,
            scheduler_hints=SchedulerHints.model_validate(req.scheduler_hints),
        )
        flavor_view = {k: flavor[k] for k in ("flavorid", "name", "memory_mb", "vcpus", "root_gb",
                                              "ephemeral_gb", "swap")}
        flavor_view["extra_specs"] = instances.decode_json(flavor.get("extra_specs"))
        groups = await _security_groups(self.db, req)
        now = time.time()
        rows = []
        async with self.db.transaction() as tx:
            # The quota check and the inserts are one transaction no other create of the
            # project can interleave with (quota.lock_project).
            await quota.lock_project(tx, req.project_id)
            count = await quota.allowed_instances(tx, req.project_id, flavor, req.min_count, count)
            uuids = spec.instance_uuids = [str(uuidlib.uuid4()) for _ in range(count)]
            spec.num_instances = count
            spec.instance_group = await _join_group(tx, req, uuids, now)
            for index, uuid in enumerate(uuids):
                name = req.name if count == 1 else f"{req.name}-{index + 1}"
                row = await tx.fetchrow(
                    "INSERT INTO instances (uuid, name, hostname, project_id, user_id, image_ref,"
                    " flavor, instance_type_id, vcpus, memory_mb, root_gb, ephemeral_gb, vm_state,"
                    " task_state, power_state, availability_zone, key_name, key_data, user_data,"
                    " metadata, reservation_id, launch_index, description, scheduler_hints,"
                    " request_spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                    " $9, $10, $11, $12, $13, $14, 0, $15, $16, $17, $18, $19, $20, $21, $22, $23,"
                    " $24, $25, $25) RETURNING *",
                    uuid, name, _hostname(name), req.project_id, req.user_id, req.image_ref,
                    _json(flavor_view), flavor["id"], flavor["vcpus"], flavor["memory_mb"],
                    flavor["root_gb"], flavor["ephemeral_gb"], states.BUILDING, states.SCHEDULING,
                    req.availability_zone, req.key_name, req.key_data, req.user_data,
                    _json(req.metadata), reservation_id, index, req.description,
                    _json(req.scheduler_hints),
                    _json({"spec": spec.model_dump(), "request_id": request_id,
                           "networks": req.networks}), now,
                )
                assert row is not None
                rows.append(instances.decode(row))
                for group in groups:  # in its groups from the start: the firewall's members
                    await secgroups.add_instance(tx, group, uuid)
                await instances.start_action(tx, uuid, "create", request_id, req.user_id,
                                             req.project_id)
        self.conductor.manager.builder.schedule(uuids, spec, request_id)
        return rows

    # ----- delete ---------------------------------------------------------------------------
    async def delete(self, row: dict[str, Any], request_id: str, ctx: Any = None) -> None:
        """Delete from any state; idempotent. Without a reachable host, delete locally."""
        uuid = row["uuid"]
        await instances.start_action(self.db, uuid, "delete", request_id,
                                     getattr(ctx, "user_id", None), row["project_id"])
        try:
            row = await instances.update(self.db, uuid, {"task_state": states.DELETING})
        except instances.InstanceNotFound:
            return
        if not row["host"]:
            await mark_deleted(self.host, uuid)
            return
        try:
            peer = await self.conductor.peer_for(row["host"])
            await peer.cast(c.PREFIX + "terminate_instance",
                            c.InstanceAction(uuid=uuid, request_id=request_id))
        except (HostUnavailable, Exception) as exc:
            # Nova's "local delete": the host is down; its agent destroys the guest when it
            # comes back and finds an instance the database no longer has.
            LOG.warning("host %s unreachable (%s); deleting %s locally", row["host"], exc, uuid)
            await mark_deleted(self.host, uuid)

    # ----- actions --------------------------------------------------------------------------
    async def action(self, row: dict[str, Any], action: str, request_id: str, ctx: Any = None,
                     **extra: Any) -> None:
        """stop, start, pause, unpause, suspend, resume, reboot, rebuild, resize, confirm/revert."""
        method: str
        message: BaseModel
        changes: dict[str, Any] = {}
        uuid = row["uuid"]
        base = {"uuid": uuid, "request_id": request_id}
        if action == "reboot":
            hard = bool(extra.get("hard"))
            check, task = ("reboot_hard", states.REBOOTING_HARD) if hard else (
                "reboot_soft", states.REBOOTING)
            method, message = "reboot_instance", c.RebootInstance(**base, hard=hard)
        elif action == "rebuild":
            check, task = "rebuild", states.REBUILDING
            # `image`: the record the API checked (None: the same image again); recorded with the
            # task state, as Nova's API does, so the host may fetch it for its own instance.
            image = extra.get("image")
            info = None if image is None else ImageInfo(**image_info_fields(image))
            if image is not None:
                changes["image_ref"] = image["id"]
            method, message = "rebuild_instance", c.RebuildInstance(**base, image=info)
        elif action == "resize":
            check, task = "resize", states.RESIZE_PREP
            method = "resize_instance"
            message = c.ResizeInstance(**base, new_flavor=extra["new_flavor"])
            await self._check_resize_quota(row, extra["new_flavor"])
            changes["system_metadata"] = resize_record(row, extra["new_flavor"])
        elif action == "createImage":
            check, task = "snapshot", states.IMAGE_SNAPSHOT
            method, message = "snapshot_instance", c.SnapshotInstance(**base, image_id=extra["image_id"])
        else:
            check, task_opt, method = _ACTIONS[action]
            task = task_opt or ""
            message = c.InstanceAction(**base)
        states.check_state(check, row)
        allowed_tasks = list(states.ALLOWED[check][1])
        try:
            await instances.update(self.db, uuid, {**changes, "task_state": task},
                                   expected_task_state=allowed_tasks,
                                   expected_vm_state=list(states.ALLOWED[check][0]))
        except instances.UnexpectedState:
            fresh = await instances.get(self.db, uuid)
            raise states.InvalidInstanceState(check.split("_")[0], uuid, fresh["vm_state"],
                                              fresh["task_state"]) from None
        await instances.start_action(self.db, uuid, _ACTION_NAMES.get(action, action), request_id,
                                     getattr(ctx, "user_id", None), row["project_id"])
        await self._cast(row, method, message, task)

    async def _check_resize_quota(self, row: dict[str, Any], new_flavor: dict[str, Any]) -> None:
        """An upsize needs room for the cores/ram delta (QuotaExceeded otherwise)."""
        deltas = {"cores": int(new_flavor["vcpus"]) - int(row["vcpus"]),
                  "ram": int(new_flavor["memory_mb"]) - int(row["memory_mb"])}
        async with self.db.transaction() as tx:
            await quota.lock_project(tx, row["project_id"])
            await quota.check(tx, row["project_id"], deltas)

    async def _cast(self, row: dict[str, Any], method: str, message: BaseModel, task: str) -> None:
        try:
            peer = await self.conductor.peer_for(row["host"] or "")
            await peer.cast(c.PREFIX + method, message)
        except Exception as exc:
            # Undo the task_state so the server is not stuck; the caller sees a 409.
            await instances.update(self.db, row["uuid"], {"task_state": None},
                                   expected_task_state=[task])
            raise HostUnavailable(row["host"] or "(none)") from exc

    async def console_output(self, row: dict[str, Any], length: int | None) -> str:
        states.check_state("console_output", row)
        peer = await self.conductor.peer_for(row["host"] or "")
        out = await peer.call(c.PREFIX + "get_console_output",
                              c.ConsoleOutputRequest(uuid=row["uuid"], length=length),
                              c.ConsoleOutput)
        return out.output

    async def vnc_console(self, row: dict[str, Any]) -> c.VncConsole:
        states.check_state("console", row)
        peer = await self.conductor.peer_for(row["host"] or "")
        target = await peer.call(c.PREFIX + "get_vnc_console", c.InstanceAction(uuid=row["uuid"]),
                                 c.VncConsole)
        check_console_target(self.host.config.vnc, row["host"] or "", peer.remote_address, target)
        return target


def resize_record(row: dict[str, Any], new_flavor: dict[str, Any]) -> dict[str, Any]:
    """system_metadata as a resize starts: the flavors it goes between and the vm_state to
    return to (Nova's instance.old_flavor/new_flavor). The conductor lets the host write the
    flavor columns only to exactly these flavors, so a host cannot shrink a quota's usage."""
    system_metadata = json_dict(row.get("system_metadata"))
    system_metadata.update(old_flavor=current_flavor(row), new_flavor=dict(new_flavor),
                           old_vm_state=row["vm_state"])
    return system_metadata


async def _join_group(tx: Executor, req: BuildRequest, uuids: list[str],
                      now: float) -> InstanceGroupSpec | None:
    """Add the new instances to the `group` hint's server group (quota server_group_members);
    the scheduler's affinity filters get the group with the hosts its members run on."""
    group_uuid = req.scheduler_hints.get("group")
    if not group_uuid:
        return None
    group = await tx.fetchrow(
        "SELECT g.id, g.uuid, g.name, p.policy FROM instance_groups g JOIN instance_group_policy p"
        " ON p.group_id = g.id WHERE g.uuid = $1 AND g.project_id = $2", group_uuid,
        req.project_id)
    if group is None:
        raise GroupNotFound(f"Instance group {group_uuid} could not be found.")
    await quota.check_group_members(tx, req.project_id, group["id"], len(uuids))
    members = await tx.fetch(
        "SELECT i.uuid, i.host FROM instance_group_members m JOIN instances i"
        " ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = $1", group["id"])
    for uuid in uuids:
        await tx.execute("INSERT INTO instance_group_members (group_id, instance_uuid, created_at)"
                         " VALUES ($1, $2, $3)", group["id"], uuid, now)
    if group["policy"] not in ("affinity", "anti-affinity"):
        return None  # the soft policies are weighers in Nova, not filters: no constraint here
    return InstanceGroupSpec(uuid=group["uuid"], name=group["name"], policy=group["policy"],
                             hosts=sorted({m["host"] for m in members if m["host"]}),
                             members=[m["uuid"] for m in members])


async def _security_groups(db: Database, req: BuildRequest) -> list[dict[str, Any]]:
    """The groups a new instance joins (SecurityGroupNotFound for one the project lacks)."""
    await secgroups.ensure_default(db, req.project_id)  # outside the create's transaction
    found: dict[int, dict[str, Any]] = {}
    for key in req.security_groups or [secgroups.DEFAULT_GROUP]:
        group = await secgroups.get_group(db, key, req.project_id)
        found[group["id"]] = group
    return list(found.values())


class GroupNotFound(LookupError):
    """The `group` scheduler hint names no server group of the project."""


_ACTION_NAMES = {"confirmResize": "confirmResize", "revertResize": "revertResize",
                 "createImage": "createImage"}


def _json(value: Any) -> str:
    return json.dumps(value)


def _hostname(name: str) -> str:
    """Nova's sanitize_hostname: lowercase, alphanumerics and dashes, at most 63 characters."""
    out = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name.lower()).strip("-")
    return out[:63] or "server"
