"""The compute manager: the agent's handlers of ``compute.*`` casts and calls (Nova's
``nova/compute/manager.py``).

The controller sets the starting task_state before it casts (task_state ``powering-off`` for a
stop, ...). The manager does the driver work, then moves the row on through the conductor with
``expected_task_state`` checks, so an action that lost a race (most often: the instance was
deleted meanwhile) stops quietly instead of overwriting the winner. Every action records Nova's
instance action events (``compute_<method>``, start and finish) under the request id it came with.

Host start-up reconciliation and power-state sync live in ``manager_init``; the calls the API
waits for (consoles, diagnostics, uptime) in ``manager_calls``; snapshot and shelve in
``manager_images``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

from cloudd.agent.compute import manager_init
from cloudd.agent.compute.drivers.base import InstanceNotFound, LifecycleEvent
from cloudd.agent.compute.manager_base import Abandoned
from cloudd.agent.compute.manager_calls import ManagerCalls
from cloudd.agent.compute.manager_images import ManagerImages
from cloudd.agent.compute.manager_utils import guest_spec
from cloudd.compute.instance_fields import flavor_columns
from cloudd.rpc import RpcContext, rpc_method
from cloudd.rpc.contracts.compute import (
    BuildInstance,
    HostDomain,
    HostResources,
    InstanceAction,
    RebootInstance,
    RebuildInstance,
    ResizeInstance,
)
from cloudd.rpc.contracts.conductor import (
    AgentInstanceValues,
    BuildFailedReport,
    InstanceNotFoundError,
)
from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance
from cloudd.vocab import power_state, states

LOG = logging.getLogger(__name__)
RESIZE_KEYS = ("old_flavor", "new_flavor", "old_vm_state")


class ComputeManager(ManagerImages, ManagerCalls):
    # What to do with this cloud's guests whose instance is gone (Nova's option of that name).
    running_deleted_instance_action: str = "reap"
    # Other clouds' and programs' domains found by the last check (reported, never touched).
    unknown_domains: tuple[HostDomain, ...] = ()

    # ----- host ---------------------------------------------------------------------------

    async def init_driver(self) -> None:
        """Connect the driver (once) and subscribe to its lifecycle events."""
        if not self._driver_started:
            await self.driver.init_host(self.host)
            self._driver_started = True
        await self.driver.set_event_callback(self.handle_lifecycle_event)

    async def init_host(self, relink: bool = False) -> None:
        """``init_driver``, then Nova's ``_init_instance`` for each instance of this host.

        Also run on every reconnection (``relink``): work that ended while the controller was
        unreachable could not report (a finished spawn left in ``spawning``), and is settled
        here, while instances with an action still in flight are left to it."""
        await self.init_driver()
        with self.reconciling():
            await manager_init.reconcile_host(self, relink=relink)

    async def cleanup_host(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._driver_started:
            await self.driver.cleanup_host()
            self._driver_started = False

    async def node_resources(self) -> list[HostResources]:
        nodes = await self.driver.get_available_nodes()
        return [await self.driver.get_available_resource(node) for node in nodes]

    async def update_available_resource(self) -> None:
        """Periodic resource report: one ``node_update`` per driver node."""
        for node in await self.node_resources():
            await self.conductor.node_update(self.host, node)

    async def sync_power_states(self) -> None:
        await manager_init.sync_power_states(self)

    async def set_cloud_id(self, cloud_id: str) -> None:
        """The cloud the agent registered with: the driver's guests are marked with it."""
        await self.driver.set_cloud_id(cloud_id)

    async def check_host_domains(self) -> None:
        """The periodic check of the host's domains (reconciliation does it at start)."""
        await manager_init.check_host_domains(self)

    def handle_lifecycle_event(self, event: LifecycleEvent) -> None:
        LOG.info("lifecycle event for %s: %s (%s)", event.uuid,
                 power_state.name(event.power_state), event.reason)
        self.run_in_background(manager_init.sync_instance_power_state(self, event.uuid),
                               f"power sync {event.uuid}")

    def run_in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("%s failed", task.get_name(), exc_info=task.exception())

    # ----- build and delete ---------------------------------------------------------------

    @rpc_method
    async def build_instance(self, ctx: RpcContext, args: BuildInstance) -> None:
        # action() counts it in flight at once: a build that arrived while init_host reconciles
        # is not an interrupted one.
        async with self.action(args.instance.uuid, args.request_id, "build_instance"):
            await self._build(args)

    async def _build(self, args: BuildInstance) -> None:
        instance, uuid = args.instance, args.instance.uuid
        # An offloaded server's unshelve is a build too (of its shelved image).
        await self.update(uuid, AgentInstanceValues(task_state=states.SPAWNING),
                          list(states.PLACING_TASKS))
        spec = guest_spec(instance, image=args.image, kernel=args.kernel, ramdisk=args.ramdisk)
        spec.network_info = args.network_info
        try:
            if self.network is not None:  # never plug a guest in whose port this host cannot guard
                self.network.check_ports_protected(spec.network_info)
            await self.driver.spawn(spec, args.node)
        except InstanceNotFound:
            raise Abandoned(f"instance {uuid} was deleted during its build") from None
        except Exception as exc:
            await self._reschedule(args, exc)
        values = AgentInstanceValues(
            vm_state=states.ACTIVE, task_state=None, power_state=await self.guest_power(uuid),
            launched_at=time.time(), launched_on=self.host,
        )
        try:
            await self.update(uuid, values, [states.SPAWNING])
        except Abandoned:
            # Deleted while spawning: the guest must not outlive its row.
            await self.driver.destroy(uuid)
            raise

    async def _reschedule(self, args: BuildInstance, exc: Exception) -> NoReturn:
        uuid = args.instance.uuid
        details = "".join(traceback.format_exception(exc))
        LOG.warning("build of %s on %s failed, handing it back: %s", uuid, args.node, exc)
        try:
            await self.driver.destroy(uuid)
        except Exception:
            LOG.exception("cannot clean up the failed build of %s", uuid)
        await self.conductor.build_failed(BuildFailedReport(
            uuid=uuid, host=self.host, node=args.node, reason=str(exc) or type(exc).__name__,
            request_id=args.request_id or None,
        ))
        raise Abandoned(f"build failed on {self.host}: {exc}", details) from exc

    @rpc_method
    async def terminate_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        async with self.action(args.uuid, args.request_id, "terminate_instance"):
            await self.delete_instance(args.uuid)

    async def delete_instance(self, uuid: str) -> None:
        """Destroy the guest and tell the conductor; from any state, any number of times."""
        try:
            await self.driver.destroy(uuid)
        except Exception as exc:
            await self.record_fault(uuid, exc)
            await self.update_quietly(uuid, AgentInstanceValues(vm_state=states.ERROR, task_state=None))
            raise
        if self.network is not None:
            try:
                await self.network.deallocate_for_instance(uuid)
            except Exception:  # the controller's sweep frees them later
                LOG.exception("cannot release the addresses of %s", uuid)
        try:
            await self.conductor.instance_destroyed(uuid, self.host)
        except InstanceNotFoundError:
            LOG.info("instance %s was already deleted", uuid)

    # ----- power actions ------------------------------------------------------------------

    @rpc_method
    async def stop_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.stop(args.uuid, args.request_id)

    async def stop(self, uuid: str, request_id: str) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            try:
                await self.driver.power_off(uuid)
            except InstanceNotFound:  # as Nova's libvirt _destroy: a guest that is gone is off
                LOG.warning("stopping %s: no guest on %s, it is already off", uuid, self.host)
            return AgentInstanceValues(vm_state=states.STOPPED)

        await self.run_action(uuid, request_id, "stop_instance", [states.POWERING_OFF], work)

    @rpc_method
    async def soft_delete_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.soft_delete(args.uuid, args.request_id)

    async def soft_delete(self, uuid: str, request_id: str) -> None:
        """Nova's soft delete: the guest is powered off and kept, with its disks, until the
        controller reclaims it or a restore powers it on again."""
        async def work(instance: Instance) -> AgentInstanceValues:
            try:
                await self.driver.power_off(uuid)
            except InstanceNotFound:
                LOG.warning("soft-deleting %s: no guest on %s, it is already off", uuid,
                            self.host)
            return AgentInstanceValues(vm_state=states.SOFT_DELETED)

        await self.run_action(uuid, request_id, "soft_delete_instance", [states.SOFT_DELETING],
                              work)

    @rpc_method
    async def restore_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.restore(args.uuid, args.request_id)

    async def restore(self, uuid: str, request_id: str) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.power_on(uuid)
            return AgentInstanceValues(vm_state=states.ACTIVE)

        await self.run_action(uuid, request_id, "restore_instance", [states.RESTORING], work)

    @rpc_method
    async def start_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.start(args.uuid, args.request_id)

    async def start(self, uuid: str, request_id: str) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.power_on(uuid)
            return AgentInstanceValues(vm_state=states.ACTIVE)

        await self.run_action(uuid, request_id, "start_instance", [states.POWERING_ON], work)

    @rpc_method
    async def reboot_instance(self, ctx: RpcContext, args: RebootInstance) -> None:
        await self.reboot(args.uuid, args.request_id, args.hard)

    async def reboot(self, uuid: str, request_id: str, hard: bool) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.reboot(uuid, hard)
            return AgentInstanceValues(vm_state=states.ACTIVE)

        # A hard reboot may replace a soft one still in progress, so both are expected.
        expected: list[str | None] = [states.REBOOTING, states.REBOOTING_HARD]
        await self.run_action(uuid, request_id, "reboot_instance", expected, work)

    def _simple(self, method: str, task_state: str, driver_call: Callable[[str], Awaitable[None]],
                final_vm_state: str, args: InstanceAction) -> Awaitable[None]:
        async def work(instance: Instance) -> AgentInstanceValues:
            await driver_call(args.uuid)
            return AgentInstanceValues(vm_state=final_vm_state)

        return self.run_action(args.uuid, args.request_id, method, [task_state], work)

    @rpc_method
    async def pause_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self._simple("pause_instance", states.PAUSING, self.driver.pause, states.PAUSED, args)

    @rpc_method
    async def unpause_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self._simple("unpause_instance", states.UNPAUSING, self.driver.unpause,
                           states.ACTIVE, args)

    @rpc_method
    async def suspend_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self._simple("suspend_instance", states.SUSPENDING, self.driver.suspend,
                           states.SUSPENDED, args)

    @rpc_method
    async def resume_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self._simple("resume_instance", states.RESUMING, self.driver.resume,
                           states.ACTIVE, args)

    @rpc_method
    async def trigger_crash_dump(self, ctx: RpcContext, args: InstanceAction) -> None:
        """Nova's: an NMI to the guest, no task_state; the action's event records the result."""
        async with self.action(args.uuid, args.request_id, "trigger_crash_dump"):
            await self.driver.inject_nmi(args.uuid)

    # ----- rebuild, resize, snapshot ------------------------------------------------------

    @rpc_method
    async def rebuild_instance(self, ctx: RpcContext, args: RebuildInstance) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.rebuild(guest_spec(instance, image=args.image))
            # image_ref is the API's to record (it did, with the rebuild request).
            launched_at, vm_state = time.time(), states.ACTIVE
            if instance.vm_state == states.STOPPED:  # a stopped server stays stopped
                await self.driver.power_off(args.uuid)
                vm_state = states.STOPPED
            return AgentInstanceValues(vm_state=vm_state, launched_at=launched_at)

        await self.run_action(args.uuid, args.request_id, "rebuild_instance",
                              [states.REBUILDING], work, intermediate=states.REBUILD_SPAWNING)

    @rpc_method
    async def resize_instance(self, ctx: RpcContext, args: ResizeInstance) -> None:
        """Cold resize on this host; the instance waits in ``resized`` for confirm or revert."""

        async def work(instance: Instance) -> AgentInstanceValues:
            old_flavor = instance.current_flavor()
            was_stopped = instance.vm_state == states.STOPPED
            spec = guest_spec(instance, flavor=args.new_flavor)
            await self.driver.resize(args.uuid, spec, power_on=not was_stopped)
            system_metadata = {**instance.system_metadata, "old_flavor": old_flavor.stored(),
                               "new_flavor": args.new_flavor.stored(),
                               "old_vm_state": instance.vm_state}
            resized = AgentInstanceValues(vm_state=states.RESIZED, system_metadata=system_metadata)
            return resized.merged(flavor_columns(args.new_flavor))

        await self.run_action(args.uuid, args.request_id, "resize_instance",
                              [states.RESIZE_PREP], work, intermediate=states.RESIZE_MIGRATING)

    @rpc_method
    async def confirm_resize(self, ctx: RpcContext, args: InstanceAction) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.confirm_resize(args.uuid)
            system_metadata = dict(instance.system_metadata)
            old_vm_state = system_metadata.get("old_vm_state")
            for key in RESIZE_KEYS:
                system_metadata.pop(key, None)
            vm_state = states.STOPPED if old_vm_state == states.STOPPED else states.ACTIVE
            return AgentInstanceValues(vm_state=vm_state, system_metadata=system_metadata)

        expected: list[str | None] = [None, states.RESIZE_CONFIRMING]
        await self.run_action(args.uuid, args.request_id, "confirm_resize", expected, work)

    @rpc_method
    async def revert_resize(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.revert(args.uuid, args.request_id)

    async def revert(self, uuid: str, request_id: str) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            system_metadata = dict(instance.system_metadata)
            was_stopped = system_metadata.get("old_vm_state") == states.STOPPED
            await self.driver.revert_resize(uuid, power_on=not was_stopped)
            old_flavor = system_metadata.get("old_flavor")
            for key in RESIZE_KEYS:
                system_metadata.pop(key, None)
            values = AgentInstanceValues(vm_state=states.STOPPED if was_stopped else states.ACTIVE,
                                         system_metadata=system_metadata)
            if isinstance(old_flavor, dict):
                values = values.merged(flavor_columns(FlavorSnapshot.model_validate(old_flavor)))
            return values

        await self.run_action(uuid, request_id, "revert_resize", [states.RESIZE_REVERTING], work)
