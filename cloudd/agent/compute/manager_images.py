"""The compute manager's actions between a guest's disks and images: snapshot (createImage,
createBackup), shelve with its offload and the unshelve of a guest still on its host, and
rescue (boot a rescue image with the guest's disks attached) and unrescue.

The snapshot's bytes are uploaded to the image the API created, over the controller link's
listener; the controller decides what becomes of them (a backup's rotation, an unshelve's
deletion of the shelved image). An offloaded guest's unshelve is a build on whichever host
the scheduler picks (``ComputeManager.build_instance``, from the shelved image).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from cloudd.agent.compute.drivers.base import InstanceNotFound
from cloudd.agent.compute.manager_base import Abandoned, ManagerBase
from cloudd.agent.image_transfer import upload_snapshot
from cloudd.rpc import RpcContext, rpc_method
from cloudd.rpc.contracts.compute import (
    InstanceAction,
    RescueInstance,
    ShelveInstance,
    SnapshotInstance,
)
from cloudd.rpc.contracts.conductor import AgentInstanceValues
from cloudd.rpc.contracts.instance import Instance
from cloudd.vocab import power_state, states

LOG = logging.getLogger(__name__)


class ManagerImages(ManagerBase):
    # The controller link's URL (set by the agent); snapshots are uploaded over it.
    controller_url: Callable[[], str] | None = None
    # The agent's TLS client context for that listener (mutual TLS: it admits enrolled hosts).
    transfer_tls: Callable[[], ssl.SSLContext] | None = None
    # The agent's network manager (plugs nothing itself: frees a deleted guest's addresses).
    network: Any = None

    async def _snapshot_into(self, uuid: str, image_id: str, expected: list[str | None],
                             uploading: str) -> None:
        """Write the root disk to ``<instances_path>/snapshots/<image_id>``, then (task_state
        `uploading`, from one of `expected`) stream it into the image on the controller."""
        dest = self.instances_path / "snapshots" / image_id
        await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
        await self.driver.snapshot(uuid, str(dest))
        if self.controller_url is not None and self.transfer_tls is not None:
            await self.update(uuid, AgentInstanceValues(task_state=uploading), expected)
            await upload_snapshot(self.controller_url(), image_id, dest, self.transfer_tls())
            await asyncio.to_thread(dest.unlink)

    @rpc_method
    async def snapshot_instance(self, ctx: RpcContext, args: SnapshotInstance) -> None:
        """createImage, and createBackup (task_state image_backup; the controller rotates)."""
        async def work(instance: Instance) -> AgentInstanceValues:
            await self._snapshot_into(args.uuid, args.image_id,
                                      [states.IMAGE_SNAPSHOT, states.IMAGE_BACKUP],
                                      states.IMAGE_UPLOADING)
            return AgentInstanceValues()

        await self.run_action(args.uuid, args.request_id, "snapshot_instance",
                              list(states.SNAPSHOT_TASKS), work)

    @rpc_method
    async def shelve_instance(self, ctx: RpcContext, args: ShelveInstance) -> None:
        """Nova's shelve: the guest powered off and its disk snapshotted into the shelved
        image; vm_state shelved. With `offload`, the host is freed at once."""
        uuid = args.uuid

        async def work(instance: Instance) -> AgentInstanceValues:
            await self._power_off_if_there(uuid)
            await self.update(uuid, AgentInstanceValues(
                task_state=states.SHELVING_IMAGE_PENDING_UPLOAD), [states.SHELVING])
            await self._snapshot_into(uuid, args.image_id,
                                      [states.SHELVING_IMAGE_PENDING_UPLOAD],
                                      states.SHELVING_IMAGE_UPLOADING)
            return AgentInstanceValues(vm_state=states.SHELVED)

        await self.run_action(uuid, args.request_id, "shelve_instance",
                              list(states.SHELVE_TASKS), work)
        if args.offload:
            try:  # unless an unshelve came first
                await self.update(uuid, AgentInstanceValues(task_state=states.SHELVING_OFFLOADING),
                                  [None])
            except Abandoned as exc:
                LOG.info("not offloading %s: %s", uuid, exc)
                return
            await self.offload(uuid, args.request_id)

    @rpc_method
    async def shelve_offload_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.offload(args.uuid, args.request_id)

    async def offload(self, uuid: str, request_id: str) -> None:
        """The shelved guest is destroyed with its disks; the controller releases the host."""
        async with self.action(uuid, request_id, "shelve_offload_instance"):
            instance = await self.get_instance(uuid)
            if instance.task_state != states.SHELVING_OFFLOADING:
                raise Abandoned(f"offload of {uuid}: task_state is {instance.task_state!r}")
            try:
                await self.driver.destroy(uuid)
            except Exception as exc:
                await self.record_fault(uuid, exc)
                await self.update_quietly(uuid, AgentInstanceValues(task_state=None),
                                          [states.SHELVING_OFFLOADING])
                raise
            await self.conductor.instance_offloaded(uuid, self.host)

    @rpc_method
    async def unshelve_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        await self.unshelve(args.uuid, args.request_id)

    async def unshelve(self, uuid: str, request_id: str) -> None:
        """A shelved guest still on this host runs again (its disk never left)."""
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.power_on(uuid)
            return AgentInstanceValues(vm_state=states.ACTIVE)

        await self.run_action(uuid, request_id, "unshelve_instance", [states.UNSHELVING], work)

    @rpc_method
    async def rescue_instance(self, ctx: RpcContext, args: RescueInstance) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.rescue(args.uuid, args.image)
            return AgentInstanceValues(vm_state=states.RESCUED)

        await self.run_action(args.uuid, args.request_id, "rescue_instance", [states.RESCUING],
                              work)

    @rpc_method
    async def unrescue_instance(self, ctx: RpcContext, args: InstanceAction) -> None:
        async def work(instance: Instance) -> AgentInstanceValues:
            await self.driver.unrescue(args.uuid)
            return AgentInstanceValues(vm_state=states.ACTIVE)

        await self.run_action(args.uuid, args.request_id, "unrescue_instance",
                              [states.UNRESCUING], work)

    async def _power_off_if_there(self, uuid: str) -> None:
        try:
            if (await self.driver.get_info(uuid)).power_state != power_state.SHUTDOWN:
                await self.driver.power_off(uuid)
        except InstanceNotFound:
            LOG.warning("shelving %s: no guest on %s, it is already off", uuid, self.host)
