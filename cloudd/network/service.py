"""The controller's network service: the network API other services call, the agents'
``network_conductor.*`` methods, the metadata service, and the periodic address sweep.

Every change that affects a host (an allocation, a floating IP, a security-group rule) ends with
``refresh_host``: the host's whole desired state is rebuilt from the database and handed to its
agent (``network.apply_state``), which applies it idempotently. A host that is not connected
gets it when it registers again (its agent asks for it).
"""

from __future__ import annotations

import asyncio
import logging

from cloudd.compute import instances
from cloudd.conductor import authz
from cloudd.conductor.build import NetworkAllocator
from cloudd.conductor.service import ConductorService, HostUnavailable
from cloudd.core import ServiceHealth, ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.network import defaults, floating, hoststate, ipam, secgroups, store
from cloudd.network.metadata import MetadataServer
from cloudd.rpc import RpcContext, RpcError, rpc_method
from cloudd.rpc.contracts import network as m
from cloudd.rpc.contracts.instance import Instance
from cloudd.vocab.network_errors import NetworkError
from cloudd.vocab.secgroup_rules import SecurityGroupRule

LOG = logging.getLogger(__name__)
SWEEP_INTERVAL = 60.0


class NetworkHealth(ServiceHealth):
    manager: str
    metadata_port: int | None  # None while the metadata listener is not bound


class NetworkService(NetworkAllocator):
    name = "network"
    depends = ("database", "conductor")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.metadata = MetadataServer(host)
        self._project_networks = asyncio.Lock()  # one first network per project, not two

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def manager_name(self) -> str:
        return self.host.config.network.network_manager

    async def start(self) -> None:
        self.host.get(ConductorService).dispatcher.register(self, prefix=m.CONDUCTOR_PREFIX)
        try:
            await self.metadata.start()
        except OSError as exc:  # the rest of the cloud works without it; /healthz tells
            LOG.error("metadata service cannot listen on port %s: %s",
                      self.host.config.network.metadata_port, exc)
        self.host.periodic(SWEEP_INTERVAL, self._sweep, "fixed IP sweep", self)

    async def stop(self) -> None:
        await self.metadata.stop()

    def health(self) -> NetworkHealth:
        return NetworkHealth(**self.state_fields(), manager=self.manager_name,
                             metadata_port=self.metadata.port)

    # ----- what the builder and the APIs call ---------------------------------------------

    async def allocate_for_instance(self, instance: Instance, host: str,
                                    requested: list[str] | None = None,
                                    security_groups: list[str] | None = None) -> list[m.Vif]:
        """Fixed IP + MAC per network, the default (or requested) security groups, and the
        host told about them before the guest is spawned."""
        if requested is None:  # "auto": a project with no network gets its own now
            async with self._project_networks:
                created = await defaults.ensure_project_network(
                    self.db, self.host.config.network, instance.project_id)
            if created is not None:
                LOG.info("project %s: network %s (%s) on %s created at its first server",
                         instance.project_id, created["uuid"], created["cidr"],
                         created["bridge"])
        info = await ipam.allocate_for_instance(self.db, self.manager_name, instance, host, requested)
        if not await secgroups.groups_of_instance(self.db, instance.uuid):
            await secgroups.assign_at_build(self.db, instance, security_groups or [])
        if info and self.host.config.network.auto_assign_floating_ip:
            info = await self._auto_assign_floating(instance, info)
        await self.refresh_project(instance.project_id, also=host)
        return info

    async def _auto_assign_floating(self, instance: Instance,
                                    info: list[m.Vif]) -> list[m.Vif]:
        """Nova's auto_assign_floating_ip: one from the default pool on the first NIC, given
        back when the server goes; a pool or quota without one leaves the server without."""
        if any(vif.floating_ips for vif in info):
            return info  # a rescheduled build keeps the one it had
        try:
            fip = await self.allocate_floating_ip(instance.project_id)
        except NetworkError as exc:
            LOG.warning("instance %s: no floating IP auto-assigned: %s", instance.uuid, exc)
            return info
        await store.mark_auto_assigned(self.db, fip.id)
        await floating.associate(self.db, fip, str(info[0].ip), None)
        return await ipam.network_info(self.db, instance.uuid)

    async def release_deleted(self, instance_uuid: str) -> None:
        await self.deallocate_for_instance(instance_uuid, None)

    async def detach_from_host(self, instance_uuid: str, host: str) -> None:
        await ipam.detach_from_host(self.db, instance_uuid)
        await self.refresh_host(host)

    async def deallocate_for_instance(self, uuid: str, host: str | None) -> list[m.Vif]:
        project_id = await instances.project_of(self.db, uuid)
        info = await ipam.deallocate_for_instance(self.db, uuid)
        if info:
            if project_id is not None:
                await self.refresh_project(project_id, also=host)
            elif host:
                await self.refresh_host(host)
        return info

    async def refresh_project(self, project_id: str, also: str | None = None) -> None:
        """Group membership changes reach every host with a guest of the project."""
        hosts = await store.project_hosts(self.db, project_id)
        if also:
            hosts.add(also)
        for host in sorted(hosts):
            await self.refresh_host(host)

    async def refresh_all(self) -> None:
        for host in sorted(self.host.get(ConductorService).agents):
            await self.refresh_host(host)

    async def refresh_host(self, host: str) -> None:
        state = await hoststate.host_state(self.db, self.host.config, host)
        conductor = self.host.get(ConductorService)
        try:
            network = await conductor.network_client(host)
            await network.apply_state(state)
        except (HostUnavailable, RpcError) as exc:  # it gets the state when it reconnects
            LOG.warning("network state of host %s not applied now: %s", host, exc)

    # ----- floating IPs and security groups (the APIs call these) ---------------------------

    async def allocate_floating_ip(self, project_id: str, pool: str | None = None,
                                   address: str | None = None) -> floating.FloatingIp:
        """From the pool (the default pool when None; one address of it if given), under the
        project's floating IP quota."""
        net_cfg = self.host.config.network
        return await floating.allocate_floating_ip(
            self.db, project_id, pool or net_cfg.default_floating_pool, net_cfg.quota_floating_ips,
            address)

    async def associate_floating_ip(self, key: str, fixed_address: str,
                                    project_id: str | None) -> floating.FloatingIp:
        fip = await floating.get_floating_ip(self.db, key, project_id)
        if fip.associated:  # moving it: the old host drops it first
            await self.disassociate_floating_ip(key, project_id)
            fip = await floating.get_floating_ip(self.db, key, project_id)
        fixed = await floating.associate(self.db, fip, fixed_address, project_id)
        await self.refresh_host(fixed["host"])
        return await floating.get_floating_ip(self.db, key, project_id)

    async def disassociate_floating_ip(self, key: str,
                                       project_id: str | None) -> floating.FloatingIp:
        fip = await floating.get_floating_ip(self.db, key, project_id)
        if fip.fixed_ip_id is not None:
            host = await store.fixed_ip_host(self.db, fip.fixed_ip_id)
            await floating.disassociate(self.db, fip)
            if host:
                await self.refresh_host(host)
        return await floating.get_floating_ip(self.db, key, project_id)

    async def release_floating_ip(self, key: str, project_id: str | None) -> None:
        await floating.release(self.db, await floating.get_floating_ip(self.db, key, project_id))

    async def add_security_group_rule(self, group: secgroups.SecurityGroup,
                                      rule: SecurityGroupRule) -> secgroups.StoredRule:
        stored = await secgroups.add_rule(self.db, group, rule)
        await self.refresh_project(group.project_id)
        return stored

    async def delete_security_group_rule(self, rule: secgroups.StoredRule) -> None:
        await secgroups.delete_rule(self.db, rule)
        await self.refresh_project(rule.project_id)

    # ----- network_conductor.* (agents) ---------------------------------------------------

    @rpc_method
    async def get_host_state(self, ctx: RpcContext, args: m.HostRef) -> m.HostNetworkState:
        caller = authz.require_self(ctx, args.host)
        return await hoststate.host_state(self.db, self.host.config, caller)

    @rpc_method
    async def dhcp_event(self, ctx: RpcContext, args: m.LeaseEvent) -> None:
        await self._check_lease_reporter(ctx, args.ip)
        if args.action in ("add", "old"):
            if not await ipam.lease_fixed_ip(self.db, args.ip):
                LOG.warning("lease of %s (%s) for an address not associated", args.ip, args.mac)
        elif args.action == "del":
            await ipam.release_fixed_ip(self.db, args.ip)

    async def _check_lease_reporter(self, ctx: RpcContext, ip: str) -> None:
        """Leases are reported by the dnsmasq that serves them: the guest's own host or the
        network's gateway host (FlatDHCP single-host: one dnsmasq for guests on every host)."""
        caller = authz.calling_host(ctx)
        row = await store.lease_hosts(self.db, ip)
        if row is None or caller not in (row.host, row.gateway_host):
            raise authz.forbidden(f"host {caller} serves no lease of {ip}", ip=ip)

    @rpc_method
    async def deallocate_for_instance_rpc(self, ctx: RpcContext, args: m.InstanceNetworkRef) -> None:
        caller = authz.require_self(ctx, args.host)
        await authz.own_instance(self.db, ctx, args.uuid, include_deleted=True)
        await self.deallocate_for_instance(args.uuid, caller)

    # ----- periodic -----------------------------------------------------------------------

    async def _sweep(self) -> None:
        """Addresses of instances deleted without their host (never built, host gone) go
        back; deallocated addresses whose lease never ended are freed after the timeout."""
        for orphan in await store.orphaned_instances(self.db):
            await self.deallocate_for_instance(orphan, None)
        timeout = self.host.config.network.fixed_ip_disassociate_timeout
        await ipam.disassociate_stale(self.db, timeout)
