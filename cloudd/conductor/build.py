"""Server builds: schedule, claim, cast to the chosen agent, and reschedule when a host fails.

Nova's conductor `schedule_and_build_instances` plus its retry loop: a build that fails on a
host releases that host's claim and is scheduled again without it, up to
`[scheduler] max_attempts`; after that, or when no host fits, the server goes to ERROR with a
fault that says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cloudd.compute import hosts, instances
from cloudd.compute.instances import Instance, SavedRequest
from cloudd.conductor.cluster import AgentLinks, HostUnavailable
from cloudd.core import Service, ServiceHost
from cloudd.db import Database, DatabaseError
from cloudd.db.service import DatabaseService
from cloudd.image import records as image_records
from cloudd.image.for_compute import BOOT_FILE_FORMATS, BootImageError, check_boot_files
from cloudd.rpc import RpcConnectionLost, RpcError
from cloudd.rpc.contracts.compute import BuildInstance, ImageInfo
from cloudd.rpc.contracts.network import Vif
from cloudd.scheduler.exceptions import NoValidHost
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import FlavorSpec, RequestSpec
from cloudd.scheduler.service import SchedulerService
from cloudd.vocab import states
from cloudd.vocab.states import BUILD_TASKS, PLACING_TASKS

LOG = logging.getLogger(__name__)

# How long a build waits for a chosen host's agent to (re)connect before trying another host.
AGENT_WAIT = 15.0
# How long resumed builds wait for a compute host to report again after a restart (at least).
RESUME_WAIT = 60.0
# Pause before casting again over a link that dropped during the cast.
CAST_RETRY_DELAY = 0.5


def boot_image_ref(row: Instance) -> str:
    """The image a build boots: an offloaded server's shelved snapshot, else its image."""
    shelved = row.system_metadata.get("shelved_image_id")
    if row.vm_state == states.SHELVED_OFFLOADED and isinstance(shelved, str):
        return shelved
    return row.image_ref


def placing_task(row: Instance) -> str:
    return states.UNSHELVING if row.vm_state == states.SHELVED_OFFLOADED else states.SCHEDULING


def flavor_of(row: Instance) -> FlavorSpec:
    return FlavorSpec(vcpus=row.vcpus, memory_mb=row.memory_mb, root_gb=row.root_gb,
                      ephemeral_gb=row.ephemeral_gb)


class NetworkAllocator(Service):
    """The network service as the builder uses it: a build's fixed IPs and MACs, allocated (and
    the host's bridge and DHCP made ready) before the cast. Defined here, so that the conductor
    finds the network by type without importing cloudd.network.service (which imports the
    conductor for its agent links); `NetworkService` implements it. No network service in the
    process: builds carry no network_info."""

    async def allocate_for_instance(self, instance: Instance, host: str,
                                    requested: list[str] | None = None,
                                    security_groups: list[str] | None = None,
                                    ) -> list[Vif]:
        raise NotImplementedError

    async def detach_from_host(self, instance_uuid: str, host: str) -> None:
        """An offloaded server's addresses stay its own, but `host` stops serving them."""
        raise NotImplementedError

    async def release_deleted(self, instance_uuid: str) -> None:
        """A deleted server's addresses and security group memberships go (its host, if it
        reached one, released them already: then there is nothing left to release)."""
        raise NotImplementedError


class Builder:
    def __init__(self, host: ServiceHost, conductor: AgentLinks) -> None:
        self.host = host
        self.conductor = conductor
        self._casting: set[str] = set()  # builds being cast now (see _cast_build)

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def scheduler(self) -> SchedulerService:
        return self.host.get(SchedulerService)

    def schedule(self, uuids: list[str], spec: RequestSpec, request_id: str) -> None:
        """Start building in the background; the API has already answered 202."""

        async def build() -> None:
            try:
                await self.schedule_and_build(uuids, spec, request_id)
            except DatabaseError as exc:
                # Not retried blindly either (a placement whose reply was lost would be claimed
                # twice): once the database answers, each build resumes from what it recorded.
                LOG.warning("building %s: the database failed (%s); resuming when it answers",
                            ", ".join(uuids), exc)
                await self._resume_after_outage(set(uuids))
            except Exception as exc:
                # Never retried blindly (it could claim twice): the servers go to ERROR instead.
                LOG.exception("building %s failed", ", ".join(uuids))
                try:
                    for uuid in uuids:
                        await self._give_up(uuid, f"Build failed: {exc!r}", request_id)
                except DatabaseError:
                    await self._resume_after_outage(set(uuids))

        self.host.create_task(build, f"build-{uuids[0]}", self.conductor)

    async def _resume_after_outage(self, uuids: set[str]) -> None:
        """What `recover` does at start, for these builds once the database answers: a placed
        build keeps its claim and is cast (again), an unplaced one is scheduled again."""
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self.recover(uuids)
                return
            except DatabaseError:
                delay = min(delay * 2, 10.0)

    async def schedule_and_build(self, uuids: list[str], spec: RequestSpec, request_id: str) -> None:
        placed: list[tuple[str, HostState]] = []

        async def record(chosen: list[HostState]) -> None:
            for uuid, state in zip(uuids, chosen, strict=True):
                try:
                    await instances.update(
                        self.db, uuid,
                        {"host": state.host, "node": state.nodename, "launched_on": state.host,
                         "availability_zone": state.availability_zone},
                        expected_task_state=list(PLACING_TASKS),
                    )
                    placed.append((uuid, state))
                except (instances.InstanceNotFound, instances.UnexpectedState):
                    # Deleted while it was being scheduled: give the room back.
                    await self.scheduler.release(state.nodename, spec.flavor)

        try:
            await self.scheduler.select_and_claim(spec, record)
        except NoValidHost as exc:
            LOG.warning("no valid host for %s: %s", ", ".join(uuids), exc.reason)
            for uuid in uuids:
                await self._give_up(uuid, exc.reason, request_id)
            return
        await asyncio.gather(*(self._cast_build(u, s.host, s.nodename, request_id)
                               for u, s in placed))

    async def _cast_build(self, uuid: str, host: str, node: str, request_id: str) -> None:
        """Hand the placed build to its host. A link that is down or drops during the cast is
        waited for (up to AGENT_WAIT in all) and the cast sent again; only a host that stays
        away, or any other failure, counts as a failed build there. One cast of a build at a
        time in this process: a host's registration recasting it meanwhile is left out. A
        duplicate that still reaches the agent changes nothing (its first move expects
        task_state ``scheduling``), but it does record a second ``compute_build_instance``
        event, finished as an error, in the server's action."""
        if uuid in self._casting:
            return
        self._casting.add(uuid)
        try:
            failure = await self._cast_until_sent(uuid, host, node, request_id)
        finally:
            self._casting.discard(uuid)
        if failure is not None:
            await self.build_failed(uuid, host, node, f"host {host} unreachable: {failure}")

    async def _cast_until_sent(self, uuid: str, host: str, node: str,
                               request_id: str) -> Exception | None:
        deadline = time.monotonic() + AGENT_WAIT
        while True:
            try:
                await self._cast_once(uuid, host, node, request_id,
                                      wait=max(0.0, deadline - time.monotonic()))
                return None
            except instances.InstanceNotFound:
                return None
            except (HostUnavailable, RpcConnectionLost) as exc:
                if time.monotonic() >= deadline:
                    return exc
                LOG.info("casting the build of %s to %s: %s; again once it is back",
                         uuid, host, exc)
                await asyncio.sleep(CAST_RETRY_DELAY)
            except Exception as exc:  # the host is unreachable: treat it as a failed build there
                if not isinstance(exc, RpcError | LookupError):
                    LOG.exception("casting build of %s to %s failed", uuid, host)
                return exc

    async def _cast_once(self, uuid: str, host: str, node: str, request_id: str,
                         wait: float) -> None:
        row = await instances.get(self.db, uuid)
        if row.host != host or row.task_state not in PLACING_TASKS:
            return  # moved on meanwhile (started, rescheduled, deleted): nothing to cast
        image = await self._image_info(boot_image_ref(row))
        try:
            boot_files = await self._boot_files(row, image)
        except BootImageError as exc:  # no host can boot it: nothing to retry
            if await self._unplace(row, {"host": None, "node": None}):
                await self._give_up(uuid, str(exc), request_id)
            return
        compute = await self.conductor.compute_client(host, wait=wait)
        network_info: list[Vif] = []
        network = self.host.find(NetworkAllocator)
        requested = row.request_spec.networks  # None: all, []: none
        if network is not None and requested != []:  # fixed IPs + MACs, bridge/DHCP ready
            network_info = await network.allocate_for_instance(row, host, requested)
        await compute.build_instance(
            BuildInstance(instance=row, node=node, image=image, **boot_files,
                          request_id=request_id, network_info=network_info))

    async def _image_info(self, image_ref: str) -> ImageInfo | None:
        """The boot image as the agent's driver needs it (the agent fetches its bytes from
        the listener's /images/{id}); None when the image service does not know it."""
        if not image_ref:
            return None
        try:
            image = await image_records.get(self.db, image_ref)
        except image_records.ImageNotFound:
            return None
        return image_records.image_info(image)

    async def _boot_files(self, row: Instance, image: ImageInfo | None) \
            -> dict[str, ImageInfo]:
        """The kernel and ramdisk to boot (the instance's own kernel_id/ramdisk_id, else its
        image's properties), checked again now: an image may have changed since the create."""
        properties = image.properties if image is not None else {}
        own = {"kernel_id": row.kernel_id, "ramdisk_id": row.ramdisk_id}
        refs = {key: own[key] or properties.get(key) for key in BOOT_FILE_FORMATS}
        found = await check_boot_files(self.db, refs, row.project_id)
        return {key.removesuffix("_id"): image_records.image_info(record)
                for key, record in found.items()}

    async def build_failed(self, uuid: str, host: str, node: str | None, reason: str) -> None:
        """A host could not build `uuid`: release its claim, then retry elsewhere or give up."""
        try:
            row = await instances.get(self.db, uuid)
        except instances.InstanceNotFound:
            return
        request_id = row.request_spec.request_id
        spec = RequestSpec.model_validate(row.request_spec.spec or {"flavor": flavor_of(row)})
        spec.instance_uuids, spec.num_instances = [uuid], 1
        spec.retry.hosts.append(node or host)
        spec.retry.num_attempts += 1
        retry = spec.retry.num_attempts <= self.host.config.scheduler.max_attempts
        values: dict[str, Any] = {"host": None, "node": None,
                                  "request_spec": SavedRequest(spec=spec.model_dump(),
                                                               request_id=request_id)}
        if retry:
            values["task_state"] = placing_task(row)
        if not await self._unplace(row, values):
            return  # deleted, or another path already moved it on
        if retry:
            LOG.info("rescheduling %s after a failure on %s: %s", uuid, host, reason)
            await self.schedule_and_build([uuid], spec, request_id)
        else:
            await self._give_up(
                uuid,
                "Exceeded maximum number of retries. Exhausted all hosts available for retrying "
                f"build failures for instance {uuid}. Last failure on {host}: {reason}",
                request_id,
            )

    async def _unplace(self, row: Instance, values: dict[str, Any]) -> bool:
        """Detach the instance from its node (releasing the claim) if nobody else did."""
        async def detach() -> bool:
            try:
                await instances.update(
                    self.db, row.uuid, values,
                    expected_task_state=[*BUILD_TASKS, states.UNSHELVING],
                )
            except (instances.InstanceNotFound, instances.UnexpectedState):
                return False
            return True

        if not row.node:
            return await detach()
        return await self.scheduler.detach_and_release(row.node, flavor_of(row), detach)

    async def _give_up(self, uuid: str, reason: str, request_id: str) -> None:
        """A build goes to ERROR with the reason as its fault; an unshelve that finds no host
        leaves the server shelved_offloaded (as Nova's), to be unshelved again."""
        try:
            row = await instances.get(self.db, uuid)
            ending = {"task_state": None} if row.vm_state == states.SHELVED_OFFLOADED else {
                "vm_state": states.ERROR, "task_state": None}
            await instances.update(self.db, uuid, ending,
                                   expected_task_state=[*BUILD_TASKS, states.UNSHELVING])
        except (instances.InstanceNotFound, instances.UnexpectedState):
            return
        await instances.add_fault(self.db, uuid, 500, reason.split(". ")[0] + ".", reason)
        await instances.action_event(self.db, uuid, request_id, "schedule_instances", "start")
        await instances.action_event(self.db, uuid, request_id, "schedule_instances", "finish",
                                     result="Error", details=reason)

    async def recover(self, only: set[str] | None = None) -> None:
        """After a controller restart: builds that were never handed to a host start again;
        builds placed on a host whose cast died with the old controller are cast again (a
        duplicate is harmless: the agent's first move expects task_state ``scheduling``)."""
        unplaced: list[tuple[str, RequestSpec, str]] = []
        for build in await self._waiting():
            if only is not None and build.uuid not in only:
                continue
            saved = build.request_spec
            if build.host is not None:
                self._recast(build.uuid, build.host, build.node or "", saved.request_id)
                continue
            if not saved.spec:
                continue
            spec = RequestSpec.model_validate(saved.spec)
            spec.instance_uuids, spec.num_instances = [build.uuid], 1
            unplaced.append((build.uuid, spec, saved.request_id))
        if unplaced:
            self.host.create_task(lambda: self._resume_unplaced(unplaced), "resume builds",
                                  self.conductor)

    async def _resume_unplaced(self, unplaced: list[tuple[str, RequestSpec, str]]) -> None:
        """While this controller (or its database) was away, no heartbeat was recorded, so every
        host looks down until its agent reconnects: scheduling at once would fail each resumed
        build with NoValidHost. Wait (bounded) until a compute host is up again."""
        await self._until_a_host_is_up()
        for uuid, spec, request_id in unplaced:
            LOG.info("resuming the interrupted build of %s", uuid)
            self.schedule([uuid], spec, request_id)

    async def _until_a_host_is_up(self) -> None:
        down_time = self.host.config.service.service_down_time
        deadline = time.monotonic() + max(RESUME_WAIT, 2 * down_time)
        while time.monotonic() < deadline:
            try:
                computes = await hosts.services(self.db, binary=hosts.COMPUTE_BINARY)
            except DatabaseError:
                computes = []
            if any(c.is_up(down_time, time.time()) and not c.disabled for c in computes):
                return
            await asyncio.sleep(0.5)

    async def recast_placed_on(self, host: str) -> None:
        """A host (re)registered: its placed builds that it never started are cast to it again,
        since a cast sent while its link was down is lost (a duplicate is harmless: the agent's
        first move expects task_state ``scheduling``)."""
        for build in await self._waiting(host):
            self._recast(build.uuid, host, build.node or "", build.request_spec.request_id)

    async def _waiting(self, host: str | None = None) -> list[instances.BuildToResume]:
        """Builds and unshelves not yet started by a host (placed on `host`, if given)."""
        return [*await instances.builds_waiting(self.db, states.BUILDING, states.SCHEDULING,
                                                host=host),
                *await instances.builds_waiting(self.db, states.SHELVED_OFFLOADED,
                                                states.UNSHELVING, host=host)]

    def _recast(self, uuid: str, host: str, node: str, request_id: str) -> None:
        LOG.info("casting the build of %s to %s again", uuid, host)

        async def recast() -> None:
            await self._cast_build(uuid, host, node, request_id)

        self.host.create_task(recast, f"recast-{uuid}", self.conductor)

    async def stop(self) -> None:
        """Build tasks belong to the conductor service; the host cancels them on stop."""
