"""The controller's compute API (Nova's compute/api.py): what the REST and EC2 front ends call.

Each action checks the instance's state (Nova's check_instance_state), moves it to the action's
task_state with a compare-and-swap (so two racing requests cannot both start), records an
instance action under the request id, and casts to the host's agent.
"""

from __future__ import annotations

import logging
import time
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from cloudd import errors
from cloudd.compute import instances, keypairs, quota
from cloudd.compute.instances import FlavorSnapshot, Instance
from cloudd.conductor.authz import check_console_target
from cloudd.conductor.manager import mark_deleted
from cloudd.conductor.service import ConductorService, HostUnavailable
from cloudd.conductor.shelve import RESCUE_IMAGE_KEY, shelved_record
from cloudd.db.service import OnHost
from cloudd.frontdoor import compute_create as create
from cloudd.frontdoor import compute_shelve as shelve_ops
from cloudd.frontdoor.compute_create import (
    BuildRequest,
    CreateRefused,
    GroupNotFound,
    KeyPairNotFound,
    ServerCreateRequest,
)
from cloudd.image.for_compute import (
    BACKUP_KEY,
    Backup,
    create_snapshot_image,
    discard_snapshot_image,
)
from cloudd.image.records import Image, image_info
from cloudd.rpc.contracts import compute as c
from cloudd.rpc.contracts.compute import ComputeClient
from cloudd.vocab import states

LOG = logging.getLogger(__name__)
# The create's request models and its refusal, for callers of ComputeAPI.create.
__all__ = ["BuildRequest", "ComputeAPI", "CreateRefused", "GroupNotFound", "ServerCreateRequest",
           "resize_record"]


# What an action sends to the host's agent, its message bound: a ComputeClient cast.
Send = Callable[[ComputeClient], Awaitable[None]]


class _Cast(Protocol):
    """An unbound ComputeClient cast that takes a plain InstanceAction."""

    def __call__(self, client: ComputeClient, /, args: c.InstanceAction) -> Awaitable[None]: ...


# action name -> (state-table entry, task_state set before the cast, ComputeClient cast)
_ACTIONS: dict[str, tuple[str, str | None, _Cast]] = {
    "stop": ("stop", states.POWERING_OFF, ComputeClient.stop_instance),
    "start": ("start", states.POWERING_ON, ComputeClient.start_instance),
    "pause": ("pause", states.PAUSING, ComputeClient.pause_instance),
    "unpause": ("unpause", states.UNPAUSING, ComputeClient.unpause_instance),
    "suspend": ("suspend", states.SUSPENDING, ComputeClient.suspend_instance),
    "resume": ("resume", states.RESUMING, ComputeClient.resume_instance),
    "confirmResize": ("confirm_resize", states.RESIZE_CONFIRMING, ComputeClient.confirm_resize),
    "revertResize": ("revert_resize", states.RESIZE_REVERTING, ComputeClient.revert_resize),
    "soft_delete": ("soft_delete", states.SOFT_DELETING, ComputeClient.soft_delete_instance),
    "restore": ("restore", states.RESTORING, ComputeClient.restore_instance),
    "shelveOffload": ("shelve_offload", states.SHELVING_OFFLOADING,
                      ComputeClient.shelve_offload_instance),
    "unshelve": ("unshelve", states.UNSHELVING, ComputeClient.unshelve_instance),
    "unrescue": ("unrescue", states.UNRESCUING, ComputeClient.unrescue_instance),
}


class ComputeAPI(OnHost):
    @property
    def conductor(self) -> ConductorService:
        return self.host.get(ConductorService)

    # ----- create ---------------------------------------------------------------------------
    async def resolve(self, req: ServerCreateRequest) -> BuildRequest:
        """The flavor, image, key pair, networks and server group `req` names (CreateRefused,
        QuotaExceeded for the metadata)."""
        return await create.resolve(self.db, req)

    async def create(self, req: ServerCreateRequest | BuildRequest,
                     request_id: str) -> list[Instance]:
        """Resolve `req` (a BuildRequest is taken as resolved), insert the rows (BUILD/
        scheduling) with their actions and security groups, start the build; return the rows.
        Refusals: CreateRefused, QuotaExceeded, SecurityGroupNotFound."""
        build = await self.resolve(req) if isinstance(req, ServerCreateRequest) else req
        template = self.host.config.default.instance_name_template
        return await create.build(self.db, self.conductor, template, build, request_id)

    # ----- references of the other actions -----------------------------------------------------
    async def rebuild_image(self, row: Instance, image_ref: str,
                            is_admin: bool) -> Image:
        """The image a rebuild of `row` boots: the same checks as a create's (ImageRefused)."""
        return await create.boot_image(self.db, image_ref, row.project_id, is_admin,
                                       row.current_flavor())

    async def rebuild_key(self, user_id: str, key_name: str | None) -> dict[str, str | None]:
        """The key columns a rebuild with `key_name` sets: the caller's own key pair of that
        name (Nova uses the requester's, not the owner's), or none for null (KeyPairNotFound)."""
        if key_name is None:
            return {"key_name": None, "key_data": None}
        key = await keypairs.get(self.db, user_id, key_name)
        if key is None:
            raise KeyPairNotFound(key_name)
        return {"key_name": key.name, "key_data": key.public_key}

    async def resize_flavor(self, row: Instance, flavor_ref: str | int,
                            project_id: str | None, is_admin: bool) -> FlavorSnapshot:
        """The flavor a resize of `row` goes to, as `action("resize", new_flavor=...)` takes it
        (FlavorNotFound; CreateRefused when it is the server's flavor)."""
        flavor = await create.usable_flavor(self.db, flavor_ref, project_id, is_admin)
        if flavor.flavorid == row.flavor.flavorid:
            raise CreateRefused("When resizing, instances must change flavor!")
        return flavor.snapshot().model_copy(update={"id": flavor.id})

    # ----- snapshot -------------------------------------------------------------------------
    async def snapshot(self, row: Instance, name: str, metadata: dict[str, str],
                       request_id: str, ctx: Any, backup: Backup | None = None,
                       action: str = "createImage") -> Image:
        """createImage (createBackup with `backup`; shelve's snapshot with action "shelve"):
        the queued image the host's upload will fill (Nova's create_image), then the action;
        the image goes away again if the action cannot start. The action's refusals are
        `action`'s (InvalidInstanceState, HostUnavailable)."""
        states.check_state("shelve" if action == "shelve" else "snapshot", row)
        image = await create_snapshot_image(
            self.db, row, name=name, metadata=metadata, user_id=ctx.user_id,
            user_name=ctx.user_name, project_name=ctx.project_name,
            backup_type=None if backup is None else backup.backup_type)
        try:
            if backup is None:
                await self.action(row, action, request_id, ctx, image_id=image.id)
            else:
                await self.action(row, "createBackup", request_id, ctx, image_id=image.id,
                                  rotation=backup.rotation)
        except BaseException:
            await discard_snapshot_image(self.db, image.id)
            raise
        return image

    # ----- shelve ---------------------------------------------------------------------------
    async def shelve(self, row: Instance, request_id: str, ctx: Any) -> None:
        """Nova's shelve: the snapshot image "<name>-shelved", then the host's shelve; with
        [DEFAULT] shelved_offload_time 0 the host is freed as soon as the image is in."""
        await self.snapshot(row, f"{row.name}-shelved", {}, request_id, ctx, action="shelve")

    async def unshelve(self, row: Instance, request_id: str, ctx: Any,
                       availability_zone: str | None = None) -> None:
        """A shelved server powers on where it is; an offloaded one is scheduled and built
        again from its shelved image (into `availability_zone`, if given: 2.77) as Nova's
        conductor does. InvalidInstanceState, HostUnavailable, UnknownZone."""
        if availability_zone is not None and row.vm_state != states.SHELVED_OFFLOADED:
            raise states.InvalidInstanceState("unshelve", row.uuid, row.vm_state,
                                              row.task_state)  # Nova: offloaded ones only
        if row.vm_state != states.SHELVED_OFFLOADED:
            await self.action(row, "unshelve", request_id, ctx)
            return
        await shelve_ops.schedule_unshelve(self.host, row, request_id, ctx, availability_zone)

    async def offload_shelved(self) -> None:
        """Shelved servers whose shelved_offload_time is up are offloaded (Nova's
        _poll_shelved_instances; here on the controller, whatever their host)."""
        due = time.time() - self.host.config.default.shelved_offload_time
        for row in await shelve_ops.shelved_before(self.db, due):
            LOG.info("offloading shelved instance %s", row.uuid)
            try:
                await self.action(row, "shelveOffload", f"req-{uuid_module.uuid4()}")
            except (states.InvalidInstanceState, HostUnavailable) as exc:
                LOG.info("%s not offloaded now: %s", row.uuid, exc)

    # ----- delete ---------------------------------------------------------------------------
    async def delete(self, row: Instance, request_id: str, ctx: Any = None) -> None:
        """Delete from any state; idempotent. Without a reachable host, delete locally. A
        shelved server's image goes too (as Nova's API deletes it)."""
        uuid = row.uuid
        await shelve_ops.forget_shelved_image(self.host, row)
        await instances.start_action(self.db, uuid, "delete", request_id,
                                     getattr(ctx, "user_id", None), row.project_id)
        try:
            row = await instances.update(self.db, uuid, {"task_state": states.DELETING})
        except instances.InstanceNotFound:
            return
        if not row.host:
            await mark_deleted(self.host, uuid)
            return
        try:
            compute = await self.conductor.compute_client(row.host)
            await compute.terminate_instance(c.InstanceAction(uuid=uuid, request_id=request_id))
        except (HostUnavailable, Exception) as exc:
            # Nova's "local delete": the host is down; its agent destroys the guest when it
            # comes back and finds an instance the database no longer has.
            LOG.warning("host %s unreachable (%s); deleting %s locally", row.host, exc, uuid)
            await mark_deleted(self.host, uuid)

    async def delete_or_soft_delete(self, row: Instance, request_id: str, ctx: Any) -> None:
        """DELETE /servers/{id}. With [DEFAULT] reclaim_instance_interval, Nova's soft delete of
        a server that ran and is idle: powered off and kept (quota and host resources too),
        restorable until the reclaim deletes it. Otherwise, and where a soft delete cannot
        start (never launched, busy, host away), a real delete, as Nova falls back to one."""
        if self.host.config.default.reclaim_instance_interval > 0 and row.launched_at:
            if row.vm_state == states.SOFT_DELETED:
                return  # already waiting for its reclaim
            try:
                await self.action(row, "soft_delete", request_id, ctx)
                return
            except (states.InvalidInstanceState, HostUnavailable) as exc:
                LOG.info("%s cannot be soft-deleted (%s): deleting it", row.uuid, exc)
        await self.delete(row, request_id, ctx)

    async def force_delete(self, row: Instance, request_id: str, ctx: Any) -> None:
        """forceDelete: a soft-deleted server goes at once (InvalidInstanceState otherwise)."""
        states.check_state("force_delete", row)
        await self.delete(row, request_id, ctx)

    async def reclaim_queued_deletes(self) -> None:
        """Delete for good the servers soft-deleted longer than reclaim_instance_interval
        (Nova's _reclaim_queued_deletes; here on the controller, whatever their host)."""
        interval = self.host.config.default.reclaim_instance_interval
        for row in await instances.soft_deleted_before(self.db, time.time() - interval):
            LOG.info("reclaiming soft-deleted instance %s", row.uuid)
            await self.delete(row, f"req-{uuid_module.uuid4()}")

    # ----- actions --------------------------------------------------------------------------
    async def action(self, row: Instance, action: str, request_id: str, ctx: Any = None,
                     **extra: Any) -> None:
        """stop, start, pause, unpause, suspend, resume, reboot, rebuild, resize, confirm/revert."""
        send: Send
        changes: dict[str, Any] = {}
        uuid = row.uuid
        base = {"uuid": uuid, "request_id": request_id}
        if action == "reboot":
            hard = bool(extra.get("hard"))
            check, task = ("reboot_hard", states.REBOOTING_HARD) if hard else (
                "reboot_soft", states.REBOOTING)
            send = partial(ComputeClient.reboot_instance, args=c.RebootInstance(**base, hard=hard))
        elif action == "rebuild":
            check, task = "rebuild", states.REBUILDING
            # `image`: the record the API checked (None: the same image again); recorded with the
            # task state, as Nova's API does, so the host may fetch it for its own instance.
            image: Image | None = extra.get("image")
            info = None if image is None else image_info(image)
            if image is not None:
                changes["image_ref"] = image.id
            # The request's new name, metadata, access IPs, key and user data (rebuild_changes'
            # columns) go with the task state, so the host's rebuild sees them.
            changes.update(extra.get("changes") or {})
            send = partial(ComputeClient.rebuild_instance, args=c.RebuildInstance(
                **base, image=info, preserve_ephemeral=bool(extra.get("preserve_ephemeral"))))
        elif action == "resize":
            check, task = "resize", states.RESIZE_PREP
            # `extra` is untyped: the flavor (resize_flavor's answer) is checked here
            new_flavor = FlavorSnapshot.model_validate(extra["new_flavor"])
            send = partial(ComputeClient.resize_instance,
                           args=c.ResizeInstance(**base, new_flavor=new_flavor))
            await self._check_resize_quota(row, new_flavor)
            changes["system_metadata"] = resize_record(row, new_flavor)
        elif action == "rescue":
            check, task = "rescue", states.RESCUING
            # The image the API checked; recorded so that the host may fetch it (and dropped
            # when the host reports the unrescue done).
            rescue_image: Image = extra["image"]
            send = partial(ComputeClient.rescue_instance, args=c.RescueInstance(
                **base, image=image_info(rescue_image)))
            changes["system_metadata"] = {**row.system_metadata,
                                          RESCUE_IMAGE_KEY: rescue_image.id}
        elif action == "shelve":
            check, task = "shelve", states.SHELVING
            offload = self.host.config.default.shelved_offload_time == 0
            send = partial(ComputeClient.shelve_instance, args=c.ShelveInstance(
                **base, image_id=extra["image_id"], offload=offload))
            changes["system_metadata"] = shelved_record(row, extra["image_id"], time.time())
        elif action in ("createImage", "createBackup"):
            check = "snapshot"
            task = states.IMAGE_SNAPSHOT if action == "createImage" else states.IMAGE_BACKUP
            send = partial(ComputeClient.snapshot_instance,
                           args=c.SnapshotInstance(**base, image_id=extra["image_id"]))
            if action == "createBackup":  # read when the upload is in (ImageAPI rotates then)
                changes["system_metadata"] = {**row.system_metadata, BACKUP_KEY: {
                    "image_id": extra["image_id"], "rotation": int(extra["rotation"])}}
        else:
            check, task_opt, method = _ACTIONS[action]
            task = task_opt or ""
            send = partial(method, args=c.InstanceAction(**base))
            if action in ("soft_delete", "restore"):  # when the reclaim's wait started
                changes["deleted_at"] = time.time() if action == "soft_delete" else None
        states.check_state(check, row)
        allowed_tasks = list(states.ALLOWED[check][1])
        try:
            await instances.update(self.db, uuid, {**changes, "task_state": task},
                                   expected_task_state=allowed_tasks,
                                   expected_vm_state=list(states.ALLOWED[check][0]))
        except instances.UnexpectedState:
            fresh = await instances.get(self.db, uuid)
            raise states.InvalidInstanceState(check.split("_")[0], uuid, fresh.vm_state,
                                              fresh.task_state) from None
        await instances.start_action(self.db, uuid, _ACTION_NAMES.get(action, action), request_id,
                                     getattr(ctx, "user_id", None), row.project_id)
        await self._cast(row, send, task, request_id)

    async def trigger_crash_dump(self, row: Instance, request_id: str, ctx: Any = None) -> None:
        """Nova's trigger_crash_dump: the state check, the action, the cast; no task_state
        (InvalidInstanceState, HostUnavailable)."""
        states.check_state("trigger_crash_dump", row)
        await instances.start_action(self.db, row.uuid, "trigger_crash_dump", request_id,
                                     getattr(ctx, "user_id", None), row.project_id)
        try:
            compute = await self.conductor.compute_client(row.host or "")
            await compute.trigger_crash_dump(c.InstanceAction(uuid=row.uuid,
                                                              request_id=request_id))
        except Exception as exc:
            await instances.withdraw_action(self.db, row.uuid, request_id)  # refused: not done
            raise HostUnavailable(row.host or "(none)") from exc

    async def _check_resize_quota(self, row: Instance, new_flavor: FlavorSnapshot) -> None:
        """An upsize needs room for the cores/ram delta (QuotaExceeded otherwise)."""
        deltas = {"cores": new_flavor.vcpus - row.vcpus,
                  "ram": new_flavor.memory_mb - row.memory_mb}
        async with self.db.transaction() as tx:
            await quota.lock_project(tx, row.project_id)
            await quota.check(tx, row.project_id, deltas, row.user_id)

    async def _cast(self, row: Instance, send: Send, task: str, request_id: str) -> None:
        try:
            await send(await self.conductor.compute_client(row.host or ""))
        except Exception as exc:
            # Undo the task_state so the server is not stuck, and the action: the caller sees
            # a 409, and a refused request does not show in os-instance-actions.
            await instances.update(self.db, row.uuid, {"task_state": None},
                                   expected_task_state=[task])
            await instances.withdraw_action(self.db, row.uuid, request_id)
            raise HostUnavailable(row.host or "(none)") from exc

    async def console_output(self, row: Instance, length: int | None) -> str:
        states.check_state("console_output", row)
        compute = await self.conductor.compute_client(row.host or "")
        out = await compute.get_console_output(
            c.ConsoleOutputRequest(uuid=row.uuid, length=length))
        return out.output

    async def host_uptime(self, host: str) -> str:
        """The host's `uptime` line, from its agent (HostUnavailable)."""
        compute = await self.conductor.compute_client(host)
        return (await compute.get_host_uptime(c.HostQuery())).uptime

    async def diagnostics(self, row: Instance) -> c.Diagnostics:
        """Nova asks any server with a host; its host answers for a running guest only."""
        if not row.host:
            raise errors.Conflict(f"Instance {row.uuid} is not ready yet: it has no host.")
        compute = await self.conductor.compute_client(row.host)
        return await compute.get_diagnostics(c.InstanceAction(uuid=row.uuid))

    async def vnc_console(self, row: Instance) -> c.VncConsole:
        states.check_state("console", row)
        compute = await self.conductor.compute_client(row.host or "")
        target = await compute.get_vnc_console(c.InstanceAction(uuid=row.uuid))
        check_console_target(self.host.config.vnc, row.host or "", compute.link.remote_address,
                             target)
        return target


def resize_record(row: Instance, new_flavor: FlavorSnapshot) -> dict[str, Any]:
    """system_metadata as a resize starts: the flavors it goes between and the vm_state to
    return to (Nova's instance.old_flavor/new_flavor). The conductor lets the host write the
    flavor columns only to exactly these flavors, so a host cannot shrink a quota's usage."""
    return {**row.system_metadata, "old_flavor": row.current_flavor().stored(),
            "new_flavor": new_flavor.stored(), "old_vm_state": row.vm_state}


_ACTION_NAMES = {"confirmResize": "confirmResize", "revertResize": "revertResize",
                 "createImage": "createImage", "createBackup": "createBackup",
                 "soft_delete": "delete"}
