"""Start-up reconciliation (Nova's ``init_host`` / ``_init_instance``) and power-state sync
(``_sync_instance_power_state``), as functions of a ``ComputeManager``: of what it offers them
(``ReconciledManager``), so that this module does not import the manager that calls it.

See /work/shared/reference/nova-services.md sections 6.4 and 7 for the tables followed here.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from cloudd.agent.compute.drivers.base import ComputeDriver, InvalidState
from cloudd.agent.compute.manager_base import Abandoned
from cloudd.agent.conductor_client import ConductorAPI
from cloudd.rpc.contracts.compute import HostDomain
from cloudd.rpc.contracts.conductor import AgentInstanceValues, InstanceNotFoundError
from cloudd.rpc.contracts.instance import Instance
from cloudd.vocab import power_state, states

LOG = logging.getLogger(__name__)


class ReconciledManager(Protocol):
    """What these functions use of the compute manager (``ComputeManager`` is the one)."""

    host: str
    driver: ComputeDriver
    conductor: ConductorAPI
    in_flight: Counter[str]
    running_deleted_instance_action: str
    unknown_domains: tuple[HostDomain, ...]

    async def update(self, uuid: str, values: AgentInstanceValues,
                     expected_task_state: list[str | None] | None = None) -> Instance: ...

    async def update_quietly(self, uuid: str, values: AgentInstanceValues,
                             expected_task_state: list[str | None] | None = None) -> None: ...

    async def guest_power(self, uuid: str) -> int: ...

    async def record_fault(self, uuid: str, exc: BaseException, code: int = 500) -> None: ...

    async def delete_instance(self, uuid: str) -> None: ...

    async def stop(self, uuid: str, request_id: str) -> None: ...

    async def start(self, uuid: str, request_id: str) -> None: ...

    async def soft_delete(self, uuid: str, request_id: str) -> None: ...

    async def restore(self, uuid: str, request_id: str) -> None: ...

    async def reboot(self, uuid: str, request_id: str, hard: bool) -> None: ...

    async def revert(self, uuid: str, request_id: str) -> None: ...

    async def offload(self, uuid: str, request_id: str) -> None: ...

    async def unshelve(self, uuid: str, request_id: str) -> None: ...

_POWER_TO_VM_STATE = {
    power_state.RUNNING: states.ACTIVE,
    power_state.PAUSED: states.PAUSED,
    power_state.SUSPENDED: states.SUSPENDED,
}
_PAUSE_FAMILY = (states.PAUSING, states.UNPAUSING, states.SUSPENDING, states.RESUMING)
_NOT_RUNNING = (power_state.NOSTATE, power_state.SHUTDOWN, power_state.CRASHED)


class InterruptedBuild(Exception):
    """The fault recorded for a build cut short by a restart of the agent."""


async def reconcile_host(manager: ReconciledManager, relink: bool = False) -> None:
    """``_init_instance`` for each instance of this host, then reap guests nobody owns.

    On a reconnection (``relink``) builds still ``scheduling`` are skipped: their cast may be
    on its way (the restarted controller re-casts them), they are not interrupted here."""
    instances = await manager.conductor.instances_on_host(manager.host)
    for instance in instances:
        if relink and _waits_for_its_cast(instance):
            continue
        try:
            await init_instance(manager, instance)
            # Nova syncs at start too: a guest that died (or was destroyed behind our back)
            # while the agent was away shows SHUTOFF now, not after the periodic sync.
            await sync_instance_power_state(manager, instance.uuid)
        except Exception:  # one bad instance must not keep the host from starting
            LOG.exception("cannot reconcile instance %s at start-up", instance.uuid)
    await check_host_domains(manager, {instance.uuid for instance in instances})


async def check_host_domains(manager: ReconciledManager, known: set[str] | None = None) -> None:
    """Nova's ``_cleanup_running_deleted_instances``: this cloud's guests on this host whose
    instance is gone get ``running_deleted_instance_action``; domains of other clouds and of
    other programs are reported only. At start (with the instances just read) and periodically."""
    if known is None:
        known = {row.uuid for row in await manager.conductor.instances_on_host(manager.host)}
    action = manager.running_deleted_instance_action
    for uuid in await manager.driver.list_instances():
        if uuid in known or uuid in manager.in_flight or action == "noop":
            continue
        if action == "log":
            LOG.warning("guest %s of this cloud has no instance on host %s (left running:"
                        " running_deleted_instance_action = log)", uuid, manager.host)
            continue
        LOG.warning("destroying guest %s: no instance of host %s owns it", uuid, manager.host)
        try:
            await manager.driver.destroy(uuid)
        except Exception:
            LOG.exception("cannot destroy the unknown guest %s", uuid)
    manager.unknown_domains = tuple(await manager.driver.unknown_domains())
    for domain in manager.unknown_domains:
        LOG.warning("domain %s (%s, %s) on this host is not this cloud's: it belongs to %s;"
                    " left alone", domain.name, domain.uuid,
                    "running" if domain.active else "stopped", domain.owner())


async def init_instance(manager: ReconciledManager, instance: Instance) -> None:
    """Finish or undo whatever the instance was doing when the agent stopped."""
    uuid, vm_state, task_state = instance.uuid, instance.vm_state, instance.task_state
    if instance.host not in (None, manager.host):
        return  # evacuated elsewhere
    if vm_state == states.SOFT_DELETED or (
        vm_state == states.ERROR and task_state not in (states.RESIZE_MIGRATING, states.DELETING)
    ):
        return
    if vm_state == states.DELETED or task_state == states.DELETING:
        LOG.info("instance %s: completing an interrupted delete", uuid)
        await manager.delete_instance(uuid)
    elif uuid in manager.in_flight:
        return  # its action is running (or came in during start-up): it settles the row
    elif _waits_for_its_cast(instance):
        # Placed here but never started by this agent (its first move leaves `scheduling`):
        # the cast may still be on its way, and the conductor casts it again when this host
        # registers, so nothing was interrupted.
        return
    elif vm_state == states.BUILDING or task_state in states.BUILD_TASKS:
        await _fail_interrupted_build(manager, uuid, task_state)
    elif task_state in states.REBUILD_TASKS:
        try:  # only if the row did not move on since it was read
            await manager.update(uuid, AgentInstanceValues(vm_state=states.ERROR, task_state=None),
                                 [task_state])
        except Abandoned:
            return
        await manager.record_fault(uuid, InterruptedBuild("Instance rebuild was interrupted"))
    elif task_state in (*states.SNAPSHOT_TASKS, *states.SHELVE_TASKS, states.RESIZE_PREP,
                        states.RESCUING, states.UNRESCUING):
        # A shelve or (un)rescue cut short leaves the server as its row was (its power state
        # is synced next).
        await manager.update_quietly(uuid, AgentInstanceValues(task_state=None), [task_state])
    elif task_state == states.RESIZE_MIGRATING:
        await _undo_resize(manager, instance)
    elif task_state == states.RESIZE_REVERTING:
        await manager.revert(uuid, "")
    elif task_state in (states.REBOOTING, states.REBOOTING_HARD):
        await _finish_reboot(manager, uuid, task_state)
    elif task_state in _PAUSE_FAMILY:
        await _settle_to_guest(manager, uuid, task_state)
    elif task_state == states.POWERING_OFF:
        await manager.stop(uuid, "")
    elif task_state == states.POWERING_ON:
        await manager.start(uuid, "")
    elif task_state == states.SOFT_DELETING:
        await manager.soft_delete(uuid, "")
    elif task_state == states.RESTORING:
        await manager.restore(uuid, "")
    elif task_state == states.SHELVING_OFFLOADING:
        await manager.offload(uuid, "")
    elif task_state == states.UNSHELVING:  # shelved here, not offloaded: power it on
        await manager.unshelve(uuid, "")


def _waits_for_its_cast(instance: Instance) -> bool:
    """A build (or an offloaded server's unshelve) placed on this host, not yet started."""
    return (instance.vm_state, instance.task_state) in (
        (states.BUILDING, states.SCHEDULING), (states.SHELVED_OFFLOADED, states.UNSHELVING))


async def _fail_interrupted_build(manager: ReconciledManager, uuid: str,
                                  task_state: str | None) -> None:
    # The conditional update comes first: a build that finished (and reported) since the row
    # was read keeps its guest.
    try:
        await manager.update(uuid, AgentInstanceValues(
            vm_state=states.ERROR, task_state=None, power_state=power_state.NOSTATE), [task_state])
    except Abandoned:
        return
    LOG.warning("instance %s: build interrupted (agent restart or lost link), set to ERROR", uuid)
    try:
        await manager.driver.destroy(uuid)
    except Exception:
        LOG.exception("cannot destroy what is left of the build of %s", uuid)
    await manager.record_fault(uuid, InterruptedBuild(
        f"Instance build on {manager.host} was interrupted by a restart of the compute service"
        " or the loss of its link to the controller"))


async def _undo_resize(manager: ReconciledManager, instance: Instance) -> None:
    """A resize cut short: the columns still hold the old flavor, so put the guest back on it."""
    uuid = instance.uuid
    try:
        await manager.driver.revert_resize(uuid, power_on=instance.vm_state != states.STOPPED)
    except InvalidState:
        pass  # the driver never got as far as resizing
    await manager.update_quietly(
        uuid, AgentInstanceValues(task_state=None, power_state=await manager.guest_power(uuid)),
        [states.RESIZE_MIGRATING])


async def _finish_reboot(manager: ReconciledManager, uuid: str, task_state: str) -> None:
    if await manager.guest_power(uuid) == power_state.RUNNING:
        await manager.update_quietly(uuid, AgentInstanceValues(
            vm_state=states.ACTIVE, task_state=None, power_state=power_state.RUNNING), [task_state])
        return
    # A soft reboot that already shut the guest down can only finish as a hard one.
    await manager.reboot(uuid, "", hard=True)


async def _settle_to_guest(manager: ReconciledManager, uuid: str, task_state: str) -> None:
    """pausing/unpausing/suspending/resuming: the guest's state says how far it got."""
    guest = await manager.guest_power(uuid)
    vm_state = _POWER_TO_VM_STATE.get(guest, states.ERROR)
    await manager.update_quietly(uuid, AgentInstanceValues(
        vm_state=vm_state, task_state=None, power_state=guest), [task_state])


# ----- power-state sync ---------------------------------------------------------------------


async def sync_power_states(manager: ReconciledManager) -> None:
    """The periodic task: sync every instance of this host with what the hypervisor says."""
    for instance in await manager.conductor.instances_on_host(manager.host):
        try:
            await sync_instance_power_state(manager, instance.uuid, instance)
        except Exception:
            LOG.exception("power-state sync of %s failed", instance.uuid)


async def sync_instance_power_state(
    manager: ReconciledManager, uuid: str, instance: Instance | None = None
) -> None:
    """Nova's ``_sync_instance_power_state`` (reference §6.4)."""
    if instance is None:
        try:
            instance = await manager.conductor.instance_get(uuid)
        except InstanceNotFoundError:
            return
    if instance.host != manager.host or instance.task_state is not None:
        return  # moved away, or an action is running and will set the state itself
    guest = await manager.guest_power(uuid)
    vm_state = instance.vm_state
    if guest != instance.power_state:
        try:
            await manager.update(uuid, AgentInstanceValues(power_state=guest), [None])
        except Abandoned:
            return
    if vm_state == states.ACTIVE and guest in (
        power_state.SHUTDOWN, power_state.CRASHED, power_state.SUSPENDED
    ):
        LOG.warning("instance %s shutdown by itself. Calling the stop API.", uuid)
        await _stop_behind_back(manager, uuid)
    elif vm_state == states.STOPPED and guest not in _NOT_RUNNING:
        LOG.warning("instance %s is not stopped (%s). Calling the stop API.",
                    uuid, power_state.name(guest))
        await _stop_behind_back(manager, uuid)
    elif vm_state == states.ACTIVE and guest in (power_state.PAUSED, power_state.NOSTATE):
        LOG.warning("instance %s is %s on the hypervisor but active in the database",
                    uuid, power_state.name(guest))
    elif vm_state in (states.SOFT_DELETED, states.DELETED) and guest not in (
        power_state.NOSTATE, power_state.SHUTDOWN
    ):
        LOG.warning("instance %s is deleted but its guest is %s", uuid, power_state.name(guest))


async def _stop_behind_back(manager: ReconciledManager, uuid: str) -> None:
    """What Nova's stop API does: take the task (unless an action got there first), stop."""
    try:
        await manager.update(uuid, AgentInstanceValues(task_state=states.POWERING_OFF), [None])
    except Abandoned:
        return
    await manager.stop(uuid, "")
