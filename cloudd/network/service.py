"""The controller's network service: the network API other services call, the agents'
``network_conductor.*`` methods, the metadata service, and the periodic address sweep.

Every change that affects a host (an allocation, a floating IP, a security-group rule) ends with
``refresh_host``: the host's whole desired state is rebuilt from the database and handed to its
agent (``network.apply_state``), which applies it idempotently. A host that is not connected
gets it when it registers again (its agent asks for it).
"""

from __future__ import annotations

import logging
from typing import Any

from cloudd.conductor import authz
from cloudd.conductor.service import ConductorService, HostUnavailable
from cloudd.core import Service, ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.network import floating, hoststate, ipam, secgroups
from cloudd.network import rpcapi as m
from cloudd.network.metadata import MetadataServer
from cloudd.network.rules import SecurityGroupRule
from cloudd.rpc import RpcContext, RpcError, rpc_method

LOG = logging.getLogger(__name__)
SWEEP_INTERVAL = 60.0


class NetworkService(Service):
    name = "network"
    depends = ("database", "conductor")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.metadata = MetadataServer(host)

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

    def health(self) -> dict[str, Any]:
        info = super().health()
        info.update(manager=self.manager_name, metadata_port=self.metadata.port)
        return info

    # ----- what the builder and the APIs call ---------------------------------------------

    async def allocate_for_instance(self, instance: dict[str, Any], host: str,
                                    requested: list[str] | None = None,
                                    security_groups: list[str] | None = None) -> list[dict[str, Any]]:
        """Fixed IP + MAC per network, the default (or requested) security groups, and the
        host told about them before the guest is spawned."""
        info = await ipam.allocate_for_instance(self.db, self.manager_name, instance, host, requested)
        if not await secgroups.groups_of_instance(self.db, instance["uuid"]):
            await secgroups.assign_at_build(self.db, instance, security_groups or [])
        await self.refresh_project(instance["project_id"], also=host)
        return info

    async def deallocate_for_instance(self, uuid: str, host: str | None) -> list[dict[str, Any]]:
        row = await self.db.fetchrow("SELECT project_id FROM instances WHERE uuid = $1", uuid)
        info = await ipam.deallocate_for_instance(self.db, uuid)
        if info:
            if row is not None:
                await self.refresh_project(row["project_id"], also=host)
            elif host:
                await self.refresh_host(host)
        return info

    async def refresh_project(self, project_id: str, also: str | None = None) -> None:
        """Group membership changes reach every host with a guest of the project."""
        hosts = {r["host"] for r in await self.db.fetch(
            "SELECT DISTINCT f.host FROM fixed_ips f JOIN instances i ON i.uuid = f.instance_uuid"
            " WHERE i.project_id = $1 AND f.host IS NOT NULL", project_id)}
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
            peer = await conductor.peer_for(host)
            await peer.call(m.PREFIX + "apply_state", state)
        except (HostUnavailable, RpcError) as exc:  # it gets the state when it reconnects
            LOG.warning("network state of host %s not applied now: %s", host, exc)

    # ----- floating IPs and security groups (the APIs call these) ---------------------------

    async def allocate_floating_ip(self, project_id: str, pool: str | None = None) -> dict[str, Any]:
        quota = self.host.config.network.quota_floating_ips
        return await floating.allocate_floating_ip(self.db, project_id, pool, quota)

    async def associate_floating_ip(self, key: str, fixed_address: str,
                                    project_id: str | None) -> dict[str, Any]:
        fip = await floating.get_floating_ip(self.db, key, project_id)
        if fip["fixed_ip_id"] is not None:  # moving it: the old host drops it first
            await self.disassociate_floating_ip(key, project_id)
            fip = await floating.get_floating_ip(self.db, key, project_id)
        fixed = await floating.associate(self.db, fip, fixed_address, project_id)
        await self.refresh_host(fixed["host"])
        return await floating.get_floating_ip(self.db, key, project_id)

    async def disassociate_floating_ip(self, key: str, project_id: str | None) -> dict[str, Any]:
        fip = await floating.get_floating_ip(self.db, key, project_id)
        if fip["fixed_ip_id"] is not None:
            host = await self.db.fetchval("SELECT host FROM fixed_ips WHERE id = $1", fip["fixed_ip_id"])
            await floating.disassociate(self.db, fip)
            if host:
                await self.refresh_host(host)
        return await floating.get_floating_ip(self.db, key, project_id)

    async def release_floating_ip(self, key: str, project_id: str | None) -> None:
        await floating.release(self.db, await floating.get_floating_ip(self.db, key, project_id))

    async def add_security_group_rule(self, group: dict[str, Any],
                                      rule: SecurityGroupRule) -> dict[str, Any]:
        row = await secgroups.add_rule(self.db, group, rule)
        await self.refresh_project(group["project_id"])
        return row

    async def delete_security_group_rule(self, rule: dict[str, Any]) -> None:
        await secgroups.delete_rule(self.db, rule)
        await self.refresh_project(rule["project_id"])

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
        row = await self.db.fetchrow(
            "SELECT f.host, n.host AS gateway_host FROM fixed_ips f JOIN networks n"
            " ON n.id = f.network_id WHERE f.address = $1", ip)
        if row is None or caller not in (row["host"], row["gateway_host"]):
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
        orphans = await self.db.fetch(
            "SELECT DISTINCT v.instance_uuid FROM virtual_interfaces v LEFT JOIN instances i"
            " ON i.uuid = v.instance_uuid WHERE i.uuid IS NULL OR i.deleted != 0")
        for row in orphans:
            await self.deallocate_for_instance(row["instance_uuid"], None)
        timeout = self.host.config.network.fixed_ip_disassociate_timeout
        await ipam.disassociate_stale(self.db, timeout)
