"""The conductor's RPC methods: what agents may read and change in the database."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cloudd.compute import hosts, instances
from cloudd.conductor import authz, shelve
from cloudd.conductor.build import Builder, NetworkAllocator
from cloudd.conductor.cluster import AgentLinks
from cloudd.consoleauth.tokens import delete_tokens_for_instance
from cloudd.core import ServiceHost
from cloudd.db import Database, Executor
from cloudd.db.cloud import ensure_cloud_id
from cloudd.db.service import DatabaseService
from cloudd.rpc import RpcContext, rpc_method
from cloudd.rpc.contracts import conductor as m
from cloudd.rpc.contracts.compute import HostResources
from cloudd.scheduler.request import FlavorSpec
from cloudd.scheduler.service import SchedulerService
from cloudd.vocab import states

LOG = logging.getLogger(__name__)
# How long the key of an applied agent report is remembered: far beyond any link outage an
# agent's queue survives (it dies with the agent process).
REPORT_KEY_TTL = 24 * 3600.0


class ConductorManager:
    def __init__(self, host: ServiceHost, service: AgentLinks) -> None:
        self.host = host
        self.service = service
        self.builder = Builder(host, service)
        self._cloud_id: str | None = None

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    async def start(self) -> None:
        await self.cloud_id()
        await self.forget_old_reports()
        await self.builder.recover()

    async def forget_old_reports(self) -> None:
        """Drop the keys of reports applied more than ``REPORT_KEY_TTL`` ago (periodic)."""
        forgotten = await instances.prune_reports(self.db, time.time() - REPORT_KEY_TTL)
        if forgotten:
            LOG.info("forgot the keys of %d agent report(s) applied long ago", forgotten)

    @asynccontextmanager
    async def _report(self, caller: str, key: m.ReportKey | None) -> AsyncIterator[Executor | None]:
        """A transaction for the change an agent reports, recording its key; None when that key
        was applied already (a retry after a lost reply): the caller then changes nothing."""
        async with self.db.transaction() as tx:
            if key is not None and not await instances.claim_report(
                    tx, key.scoped(caller), caller, time.time()):
                LOG.info("report %s of %s was applied already", key.scoped(caller), caller)
                yield None
                return
            yield tx

    async def _applied(self, caller: str, key: m.ReportKey | None) -> bool:
        return key is not None and await instances.report_applied(self.db, key.scoped(caller))

    async def cloud_id(self) -> str:
        """This cloud's id (made at the first start; it never changes afterwards)."""
        if self._cloud_id is None:
            self._cloud_id = await ensure_cloud_id(self.db)
        return self._cloud_id

    async def stop(self) -> None:
        await self.builder.stop()

    # ----- services and nodes -------------------------------------------------------------
    @rpc_method
    async def register_host(self, ctx: RpcContext, args: m.RegisterHost) -> m.Registered:
        # The link is bound to its certificate's host before any call: it registers only that.
        authz.require_self(ctx, args.host)  # nothing is written for another host
        now = time.time()
        cfg = self.host.config
        await self._check_nodes_free(args)
        async with self.db.transaction() as tx:
            service_id, service_uuid = await hosts.register_service(tx, args.host, args.binary,
                                                                    now)
            for node in args.nodes:
                await self._upsert_node(tx, service_id, args, node, now)
        await self.host.get(SchedulerService).heal(args.host)
        await self.service.remember(args.host, ctx.peer)
        LOG.info("host %s registered with %d node(s)", args.host, len(args.nodes))
        await self.builder.recast_placed_on(args.host)  # builds whose cast its old link lost
        return m.Registered(service_id=service_id, service_uuid=service_uuid,
                            report_interval=cfg.service.report_interval,
                            cloud_id=await self.cloud_id())

    async def _check_nodes_free(self, args: m.RegisterHost) -> None:
        """A node another host already reports is not taken over (nothing is written)."""
        for node in args.nodes:
            owner = await hosts.node_owner(self.db, node.hypervisor_hostname)
            if owner is not None and owner != args.host:
                raise authz.forbidden(
                    f"node {node.hypervisor_hostname} belongs to host {owner}, not {args.host}")

    async def _upsert_node(self, db: Executor, service_id: int, args: m.RegisterHost,
                           node: HostResources, now: float) -> None:
        sched = self.host.config.scheduler
        await hosts.upsert_node(
            db, service_id, args.host, args.availability_zone,
            hosts.NodeValues(
                hypervisor_hostname=node.hypervisor_hostname,
                hypervisor_type=node.hypervisor_type,
                hypervisor_version=node.hypervisor_version, cpu_info=node.cpu_info,
                supported_instances=node.supported_instances, host_ip=node.host_ip,
                vcpus=node.vcpus, memory_mb=node.memory_mb, local_gb=node.local_gb),
            (sched.cpu_allocation_ratio, sched.ram_allocation_ratio,
             sched.disk_allocation_ratio),
            self.host.config.compute.reserved_host_memory_mb, now)

    @rpc_method
    async def heartbeat(self, ctx: RpcContext, args: m.Heartbeat) -> None:
        authz.require_self(ctx, args.host)
        await hosts.heartbeat(self.db, args.host, args.binary, time.time())

    @rpc_method
    async def node_update(self, ctx: RpcContext, args: m.NodeUpdate) -> None:
        caller = authz.require_self(ctx, args.host)
        n = args.node
        if not await hosts.update_node_size(self.db, caller, n.hypervisor_hostname, n.vcpus,
                                            n.memory_mb, n.local_gb):
            raise authz.forbidden(f"host {caller} has no node {n.hypervisor_hostname}")

    # ----- instances ----------------------------------------------------------------------
    @rpc_method
    async def instance_get(self, ctx: RpcContext, args: m.InstanceRef) -> m.InstanceRecord:
        # The whole row: the host builds the guest's config drive from user_data and key_data.
        return m.InstanceRecord(instance=await authz.own_instance(self.db, ctx, args.uuid))

    @rpc_method
    async def instances_on_host(self, ctx: RpcContext, args: m.HostRef) -> m.InstanceList:
        caller = authz.require_self(ctx, args.host)
        return m.InstanceList(instances=await instances.on_host(self.db, caller))

    @rpc_method
    async def instance_update(self, ctx: RpcContext, args: m.InstanceUpdate) -> m.InstanceRecord:
        row = await authz.own_instance(self.db, ctx, args.uuid)
        caller = authz.calling_host(ctx)
        if await self._applied(caller, args.key):  # a retry: the row moved on since, rightly
            return m.InstanceRecord(instance=row)
        authz.check_update(row, args.values, row.host or "", args.expected_task_state)
        try:
            async with self._report(caller, args.key) as tx:
                if tx is None:  # a duplicate of this report, applied meanwhile
                    return m.InstanceRecord(instance=row)
                # Conditional on the host too: the row cannot move away between check and write.
                before, row = row, await instances.update(
                    tx, args.uuid, args.values.columns(), args.expected_task_state,
                    args.expected_vm_state, host=row.host,
                )
        except instances.InstanceNotFound as exc:
            raise m.InstanceNotFoundError(str(exc)) from None
        except instances.UnexpectedState as exc:
            error = m.UnexpectedTaskState if exc.column == "task_state" else m.UnexpectedVMState
            raise error(str(exc), {"actual": exc.actual}) from None
        await shelve.finish_unshelve(self.host, before, row)
        await shelve.finish_unrescue(self.host, before, row)
        return m.InstanceRecord(instance=row)

    @rpc_method
    async def action_event(self, ctx: RpcContext, args: m.ActionEvent) -> None:
        caller = authz.require_self(ctx, args.host)
        try:
            await authz.own_instance(self.db, ctx, args.uuid, include_deleted=True)
        except m.InstanceNotOnHost:
            if args.phase == "start" or not await authz.finishes_own_event(
                    self.db, args.uuid, args.request_id, args.event, caller):
                raise
        async with self._report(caller, args.key) as tx:
            if tx is not None:
                await instances.action_event(
                    tx, args.uuid, args.request_id, args.event, args.phase, args.host,
                    args.result, args.traceback, args.details,
                )

    @rpc_method
    async def fault_create(self, ctx: RpcContext, args: m.FaultCreate) -> None:
        caller = authz.require_self(ctx, args.host)
        await authz.own_instance(self.db, ctx, args.uuid, include_deleted=True)
        async with self._report(caller, args.key) as tx:
            if tx is not None:
                await instances.add_fault(tx, args.uuid, args.code, args.message, args.details,
                                          args.host)

    @rpc_method
    async def build_failed(self, ctx: RpcContext, args: m.BuildFailedReport) -> None:
        caller = authz.require_self(ctx, args.host)
        if await self._applied(caller, args.key):
            return  # a retry: the build was handed back already (and may be placed elsewhere)
        row = await authz.own_instance(self.db, ctx, args.uuid)
        if args.node is not None and args.node != row.node:
            raise authz.forbidden(f"instance {args.uuid} is not on node {args.node}")
        # The rescheduling claims and casts outside any one transaction, so its key is recorded
        # after it: a retry in between finds the build unplaced from this node (refused above).
        await self.builder.build_failed(args.uuid, args.host, args.node, args.reason)
        async with self._report(caller, args.key):
            pass

    @rpc_method
    async def instance_destroyed(self, ctx: RpcContext, args: m.InstanceDestroyed) -> None:
        authz.require_self(ctx, args.host)
        await authz.own_instance(self.db, ctx, args.uuid, include_deleted=True)
        await mark_deleted(self.host, args.uuid)

    @rpc_method
    async def instance_offloaded(self, ctx: RpcContext, args: m.InstanceOffloaded) -> None:
        caller = authz.require_self(ctx, args.host)
        try:
            row = await authz.own_instance(self.db, ctx, args.uuid)
        except m.InstanceNotOnHost:
            current = await instances.get(self.db, args.uuid)
            if current.vm_state == states.SHELVED_OFFLOADED and \
                    current.system_metadata.get("shelved_host") == caller:
                return  # a retry of its offload, applied already
            raise
        if not await shelve.offload(self.host, row):
            raise m.UnexpectedTaskState(
                f"instance {args.uuid} is not being offloaded from {args.host}",
                {"actual": row.task_state})


async def mark_deleted(host: ServiceHost, uuid: str) -> bool:
    """Finish a delete: the row becomes deleted and its node's resources are released, once."""
    db = host.get(DatabaseService).db
    while True:
        held = await instances.held_resources(db, uuid)
        if held is None:
            return False  # already deleted: delete is idempotent
        node = held.node or ""

        async def detach(node: str = node) -> bool:
            # Only while the row still holds that node: a build moved elsewhere meanwhile
            # holds another claim, and the loop reads it again.
            return await instances.mark_deleted_on_node(db, uuid, node, states.DELETED)

        if node:
            flavor = FlavorSpec(vcpus=held.vcpus, memory_mb=held.memory_mb,
                                root_gb=held.root_gb, ephemeral_gb=held.ephemeral_gb)
            deleted = await host.get(SchedulerService).detach_and_release(node, flavor, detach)
        else:
            deleted = await detach()
        if deleted:
            await delete_tokens_for_instance(db, uuid)  # its console URLs stop working
            network = host.find(NetworkAllocator)
            if network is not None:  # deleted without its host (none, or away): not later
                await network.release_deleted(uuid)
            return True
