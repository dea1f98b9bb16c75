"""The conductor's RPC methods: what agents may read and change in the database."""

from __future__ import annotations

import json
import logging
import time
import uuid as uuidlib
from typing import TYPE_CHECKING

from cloudd.compute import instances, states
from cloudd.compute.drivers.base import HostResources
from cloudd.conductor import authz
from cloudd.conductor import rpcapi as m
from cloudd.conductor.build import Builder
from cloudd.consoleauth.tokens import delete_tokens_for_instance
from cloudd.db import Database, Executor
from cloudd.db.service import DatabaseService
from cloudd.rpc import RpcContext, rpc_method
from cloudd.scheduler.request import FlavorSpec
from cloudd.scheduler.service import SchedulerService

if TYPE_CHECKING:
    from cloudd.conductor.service import ConductorService
    from cloudd.core import ServiceHost

LOG = logging.getLogger(__name__)


class ConductorManager:
    def __init__(self, host: ServiceHost, service: ConductorService) -> None:
        self.host = host
        self.service = service
        self.builder = Builder(host, service)

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    async def start(self) -> None:
        await self.builder.recover()

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
            row = await tx.fetchrow(
                "SELECT id, uuid FROM services WHERE host = $1 AND \"binary\" = $2",
                args.host, args.binary,
            )
            if row is None:
                row = await tx.fetchrow(
                    "INSERT INTO services (uuid, host, \"binary\", topic, created_at, updated_at,"
                    " last_seen_up) VALUES ($1, $2, $3, 'compute', $4, $4, $4) RETURNING id, uuid",
                    str(uuidlib.uuid4()), args.host, args.binary, now,
                )
                assert row is not None
            else:
                await tx.execute(
                    "UPDATE services SET updated_at = $1, last_seen_up = $1,"
                    " report_count = report_count + 1 WHERE id = $2", now, row["id"],
                )
            for node in args.nodes:
                await self._upsert_node(tx, row["id"], args, node, now)
        await self.host.get(SchedulerService).heal(args.host)
        await self.service.remember(args.host, ctx.peer)
        LOG.info("host %s registered with %d node(s)", args.host, len(args.nodes))
        await self.builder.recast_placed_on(args.host)  # builds whose cast its old link lost
        return m.Registered(service_id=row["id"], service_uuid=row["uuid"],
                            report_interval=cfg.service.report_interval)

    async def _check_nodes_free(self, args: m.RegisterHost) -> None:
        """A node another host already reports is not taken over (nothing is written)."""
        for node in args.nodes:
            owner = await self.db.fetchval(
                "SELECT host FROM compute_nodes WHERE hypervisor_hostname = $1",
                node.hypervisor_hostname)
            if owner is not None and owner != args.host:
                raise authz.forbidden(
                    f"node {node.hypervisor_hostname} belongs to host {owner}, not {args.host}")

    async def _upsert_node(self, db: Executor, service_id: int, args: m.RegisterHost,
                           node: HostResources, now: float) -> None:
        sched = self.host.config.scheduler
        reserved = self.host.config.compute.reserved_host_memory_mb
        values = (
            service_id, args.host, node.hypervisor_type, node.hypervisor_version,
            json.dumps(node.cpu_info), json.dumps(node.supported_instances),
            args.availability_zone, node.host_ip, node.vcpus, node.memory_mb, node.local_gb,
            sched.cpu_allocation_ratio, sched.ram_allocation_ratio, sched.disk_allocation_ratio,
            reserved, now, node.hypervisor_hostname,
        )
        updated = await db.execute(
            "UPDATE compute_nodes SET service_id = $1, host = $2, hypervisor_type = $3,"
            " hypervisor_version = $4, cpu_info = $5, supported_instances = $6,"
            " availability_zone = $7, host_ip = $8, vcpus = $9, memory_mb = $10, local_gb = $11,"
            " cpu_allocation_ratio = $12, ram_allocation_ratio = $13, disk_allocation_ratio = $14,"
            " reserved_host_memory_mb = $15, updated_at = $16 WHERE hypervisor_hostname = $17",
            *values,
        )
        if not updated:
            await db.execute(
                "INSERT INTO compute_nodes (service_id, host, hypervisor_type, hypervisor_version,"
                " cpu_info, supported_instances, availability_zone, host_ip, vcpus, memory_mb,"
                " local_gb, cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio,"
                " reserved_host_memory_mb, created_at, hypervisor_hostname, uuid, memory_mb_used)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                " $17, $18, $15)",
                *values, str(uuidlib.uuid4()),
            )

    @rpc_method
    async def heartbeat(self, ctx: RpcContext, args: m.Heartbeat) -> None:
        authz.require_self(ctx, args.host)
        now = time.time()
        await self.db.execute(
            "UPDATE services SET updated_at = $1, last_seen_up = $1, report_count = report_count + 1"
            " WHERE host = $2 AND \"binary\" = $3",
            now, args.host, args.binary,
        )

    @rpc_method
    async def node_update(self, ctx: RpcContext, args: m.NodeUpdate) -> None:
        caller = authz.require_self(ctx, args.host)
        n = args.node
        updated = await self.db.execute(
            "UPDATE compute_nodes SET vcpus = $1, memory_mb = $2, local_gb = $3, updated_at = $4"
            " WHERE hypervisor_hostname = $5 AND host = $6",
            n.vcpus, n.memory_mb, n.local_gb, time.time(), n.hypervisor_hostname, caller,
        )
        if not updated:
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
        authz.check_update(row, args.values, row["host"], args.expected_task_state)
        try:
            # Conditional on the host too: the row cannot move away between check and write.
            row = await instances.update(
                self.db, args.uuid, args.values, args.expected_task_state, args.expected_vm_state,
                host=row["host"],
            )
        except instances.InstanceNotFound as exc:
            raise m.InstanceNotFoundError(str(exc)) from None
        except instances.UnexpectedState as exc:
            error = m.UnexpectedTaskState if exc.column == "task_state" else m.UnexpectedVMState
            raise error(str(exc), {"actual": exc.actual}) from None
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
        await instances.action_event(
            self.db, args.uuid, args.request_id, args.event, args.phase, args.host,
            args.result, args.traceback, args.details,
        )

    @rpc_method
    async def fault_create(self, ctx: RpcContext, args: m.FaultCreate) -> None:
        authz.require_self(ctx, args.host)
        await authz.own_instance(self.db, ctx, args.uuid, include_deleted=True)
        await instances.add_fault(self.db, args.uuid, args.code, args.message, args.details,
                                  args.host)

    @rpc_method
    async def build_failed(self, ctx: RpcContext, args: m.BuildFailedReport) -> None:
        authz.require_self(ctx, args.host)
        row = await authz.own_instance(self.db, ctx, args.uuid)
        if args.node is not None and args.node != row["node"]:
            raise authz.forbidden(f"instance {args.uuid} is not on node {args.node}")
        await self.builder.build_failed(args.uuid, args.host, args.node, args.reason)

    @rpc_method
    async def instance_destroyed(self, ctx: RpcContext, args: m.InstanceDestroyed) -> None:
        authz.require_self(ctx, args.host)
        await authz.own_instance(self.db, ctx, args.uuid, include_deleted=True)
        await mark_deleted(self.host, args.uuid)


async def mark_deleted(host: ServiceHost, uuid: str) -> bool:
    """Finish a delete: the row becomes deleted and its node's resources are released, once."""
    db = host.get(DatabaseService).db
    now = time.time()
    row = await db.fetchrow(
        "UPDATE instances SET deleted = 1, deleted_at = $1, terminated_at = $1, updated_at = $1,"
        " vm_state = $2, task_state = NULL, power_state = 0 WHERE uuid = $3 AND deleted = 0"
        " RETURNING node, vcpus, memory_mb, root_gb, ephemeral_gb",
        now, states.DELETED, uuid,
    )
    if row is None:
        return False  # already deleted: delete is idempotent
    await delete_tokens_for_instance(db, uuid)  # its console URLs stop working
    if row["node"]:
        flavor = FlavorSpec(vcpus=row["vcpus"], memory_mb=row["memory_mb"],
                            root_gb=row["root_gb"], ephemeral_gb=row["ephemeral_gb"])
        await host.get(SchedulerService).release(row["node"], flavor)
    return True
