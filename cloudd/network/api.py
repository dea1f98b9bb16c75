"""The network domain's front door (nova-network's API, without HTTP): what the Network API
(Neutron-shaped, ``cloudd/api/network``), Nova's network proxies (``os-floating-ips``,
``os-security-groups``, the add/remove actions) and EC2's address and security group calls
call for floating IPs and security groups.

It owns, once for the three: lookups by reference (a floating IP by uuid or address, a group
by uuid, numeric id or name, a port, a server's first fixed IP) within the caller's project
(``project_id`` None: an admin, who sees and acts on every project's), the project's default
group made before its first group, the floating IP quota and default pool (the network
service's configuration), a rule already present or missing, a server already in or not in a
group, and the cast to the hosts: every change that reaches a firewall or a NAT table goes
through ``NetworkService`` (``refresh_host`` / ``refresh_project``).

The callers check the caller's role (read, act, admin) and parse their wire format before
they call; the records are typed (``FloatingIp``, ``SecurityGroup``, ``StoredRule``); the
refusals are the domain's (``cloudd.network.floating``, ``cloudd.network.secgroups``, and the
kinds of ``cloudd.errors`` below), which each API renders in its own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudd import errors
from cloudd.db.service import OnHost
from cloudd.network import floating, secgroups, store
from cloudd.network.floating import FloatingIp
from cloudd.network.secgroups import SecurityGroup, StoredRule
from cloudd.network.service import NetworkService
from cloudd.network.store import networks as network_store
from cloudd.network.store.networks import Network
from cloudd.vocab.secgroup_rules import SecurityGroupRule


class NetworkUnavailable(errors.Unavailable):
    """The process runs no network service (EC2's UnsupportedOperation)."""


class PortNotFound(errors.NotFound):
    """No port (virtual interface) of that id in the caller's project."""


class NoFixedIp(errors.BadRequest):
    """A server without a fixed IP a floating IP could be associated with."""


class FloatingIpNotAssociated(errors.BadRequest):
    """removeFloatingIp of an address the server does not have."""


class SecurityGroupRuleExists(errors.Conflict):
    """A requested rule the group already has; `existing` is that rule's uuid."""

    def __init__(self, existing: str) -> None:
        super().__init__(f"Security group rule already exists. Rule id is {existing}.")
        self.existing = existing


class SecurityGroupRuleMissing(errors.NotFound):
    """A rule to revoke the group does not have."""


class MembershipUnchanged(errors.Conflict):
    """A server added to a group it is in, or removed from one it is not in; `member` says
    which (Nova answers the first 409, the second 400)."""

    def __init__(self, member: bool) -> None:
        super().__init__("already in" if member else "not in")
        self.member = member


@dataclass(frozen=True)
class ProjectNetworkUsage:
    """A project's floating IPs, networks and ports, and its groups (the default one made
    when missing) and their rules."""
    counts: store.NetworkUsage
    security_groups: int
    security_group_rules: int


@dataclass(frozen=True)
class Port:
    """A server's virtual interface as the Network API's port: the NIC and the uuids of its
    server's security groups."""
    nic: store.Nic
    security_group_ids: list[str]


class NetworkAPI(OnHost):
    @property
    def service(self) -> NetworkService:
        service = self.host.find(NetworkService)
        if service is None:
            raise NetworkUnavailable("This cloud runs no network service")
        return service

    # ----- networks and ports -------------------------------------------------------------------
    @property
    def manager_name(self) -> str:
        """nova-network's manager (Flat, FlatDHCP, VLAN): what a network's subnet offers."""
        return self.host.config.network.network_manager

    async def networks(self, project_id: str | None) -> list[Network]:
        """The networks the project may plug servers into (None: every one, for admins)."""
        return await network_store.visible(self.db, project_id)

    async def network_exists(self, network_uuid: str) -> bool:
        return await store.network_exists(self.db, network_uuid)

    async def ports(self, project_id: str | None,
                    server_uuids: list[str] | None = None) -> list[Port]:
        """The virtual interfaces of the project's servers (None: every project's), or of
        these servers, each with its server's security groups."""
        nics = await store.nics(self.db, server_uuids, project_id)
        groups: dict[str, list[str]] = {}
        for nic in nics:
            uuid = nic.instance_uuid
            if uuid not in groups:
                groups[uuid] = [g.uuid for g in await secgroups.groups_of_instance(self.db, uuid)]
        return [Port(nic, groups[nic.instance_uuid]) for nic in nics]

    async def port_fixed_address(self, port_id: str, project_id: str | None) -> str:
        port = await store.port_address(self.db, port_id)
        if port is None or (project_id is not None and port.project_id != project_id):
            raise PortNotFound(f"Port {port_id} could not be found.")
        return port.address

    # ----- quota ------------------------------------------------------------------------------
    @property
    def floating_ip_quota(self) -> int:
        """A project's floating IPs at most (nova-network's quota_floating_ips, -1: no limit)."""
        return self.host.config.network.quota_floating_ips

    async def usage(self, project_id: str) -> ProjectNetworkUsage:
        """What a project holds (the Network API's quota details)."""
        groups = await secgroups.list_groups(self.db, project_id)
        rules = await self.rules_of(groups)
        return ProjectNetworkUsage(await store.project_usage(self.db, project_id),
                                   security_groups=len(groups), security_group_rules=len(rules))

    # ----- floating IPs -------------------------------------------------------------------------
    async def floating_pools(self) -> list[str]:
        return await floating.list_pools(self.db)

    async def floating_ips(self, project_id: str | None) -> list[FloatingIp]:
        return await floating.list_floating_ips(self.db, project_id)

    async def floating_ip(self, key: str, project_id: str | None) -> FloatingIp:
        """By uuid or address (FloatingIpNotFound, another project's too)."""
        return await floating.get_floating_ip(self.db, key, project_id)

    async def floating_address_of_association(self, number: int, project_id: str) -> str:
        """EC2's ``eipassoc-`` ids are the floating IP's row id (the text "None" when there is
        no such row, which then is not found by address)."""
        return str(await store.floating_address_by_id(self.db, number, project_id))

    async def allocate_floating_ip(self, project_id: str, pool: str | None = None,
                                   address: str | None = None,
                                   port_id: str | None = None) -> FloatingIp:
        """One from the pool under the project's quota (FloatingIpQuotaExceeded,
        NoMoreFloatingIps); with a port, associated to it, or given back if that fails."""
        service = self.service
        fip = await service.allocate_floating_ip(project_id, pool, address)
        if port_id is None:
            return fip
        try:
            return await self.associate_to_port(fip.uuid, port_id, project_id)
        except BaseException:
            await service.release_floating_ip(fip.uuid, project_id)
            raise

    async def associate_to_port(self, key: str, port_id: str,
                                project_id: str | None) -> FloatingIp:
        fixed = await self.port_fixed_address(port_id, project_id)
        return await self.service.associate_floating_ip(key, fixed, project_id)

    async def associate_floating_ip(self, key: str, fixed_address: str,
                                    project_id: str | None) -> FloatingIp:
        return await self.service.associate_floating_ip(key, fixed_address, project_id)

    async def add_floating_ip(self, server_uuid: str, address: str, fixed_address: str | None,
                              project_id: str | None) -> FloatingIp:
        """Nova's addFloatingIp: to the given fixed IP or the server's first."""
        fixed = fixed_address or await store.first_fixed_address(self.db, server_uuid)
        if not fixed:
            raise NoFixedIp(f"Instance {server_uuid} has no fixed IP to associate with.")
        return await self.associate_floating_ip(address, fixed, project_id)

    async def remove_floating_ip(self, server_uuid: str, address: str,
                                 project_id: str | None) -> FloatingIp:
        """Nova's removeFloatingIp: only an address associated with that server."""
        fip = await self.floating_ip(address, project_id)
        if fip.instance_uuid != server_uuid or not fip.associated:
            raise FloatingIpNotAssociated(
                f"Floating IP {address} is not associated with the instance.")
        return await self.disassociate_floating_ip(fip.uuid, project_id)

    async def disassociate_floating_ip(self, key: str, project_id: str | None) -> FloatingIp:
        return await self.service.disassociate_floating_ip(key, project_id)

    async def release_floating_ip(self, key: str, project_id: str | None) -> None:
        """EC2's ReleaseAddress: an associated address stays (FloatingIpAssociated)."""
        await self.service.release_floating_ip(key, project_id)

    async def delete_floating_ip(self, fip: FloatingIp, project_id: str | None) -> None:
        """Neutron's and Nova's delete: disassociated first, then given back."""
        service = self.service
        if fip.associated:
            await service.disassociate_floating_ip(fip.uuid, project_id)
        await service.release_floating_ip(fip.uuid, project_id)

    # ----- security groups ----------------------------------------------------------------------
    async def security_groups(self, project_id: str | None,
                              own_project: str | None = None) -> list[SecurityGroup]:
        """The project's groups, its default one made if missing (None: every project's, the
        admin's `own_project` default group made first)."""
        if project_id is None and own_project is not None:
            await secgroups.ensure_default(self.db, own_project)
        return await secgroups.list_groups(self.db, project_id)

    async def security_group(self, key: str | int, project_id: str | None) -> SecurityGroup:
        """By uuid, numeric id or name within the project (SecurityGroupNotFound)."""
        return await secgroups.get_group(self.db, key, project_id)

    async def security_group_by_uuid(self, group_uuid: str,
                                     project_id: str | None) -> SecurityGroup:
        return await secgroups.get_group_by_uuid(self.db, group_uuid, project_id)

    async def create_security_group(self, project_id: str, name: str, description: str,
                                    user_id: str | None) -> SecurityGroup:
        """After the project's default group (so it is never missing beside a new one);
        SecurityGroupExists for a name the project has."""
        await secgroups.ensure_default(self.db, project_id)
        return await secgroups.create_group(self.db, project_id, name, description, user_id)

    async def delete_security_group(self, group: SecurityGroup,
                                    allow_default: bool = False) -> None:
        """NetworkError: the default group (unless allowed), a group in use."""
        await secgroups.delete_group(self.db, group, allow_default)

    async def rules_of(self, groups: list[SecurityGroup]) -> list[StoredRule]:
        return await secgroups.rules_of(self.db, [g.id for g in groups])

    async def source_groups(self, rules: list[StoredRule]) -> dict[int, SecurityGroup]:
        return await secgroups.source_groups(self.db, rules)

    async def visible_rules(self, project_id: str | None) -> list[StoredRule]:
        """Every rule of the project's groups (None: of every project)."""
        if project_id is None:
            return await secgroups.all_rules(self.db)
        return await self.rules_of(await secgroups.list_groups(self.db, project_id))

    async def security_group_rule(self, key: str, project_id: str | None) -> StoredRule:
        return await secgroups.get_rule(self.db, key, project_id)

    async def add_security_group_rules(self, group: SecurityGroup,
                                       requested: list[SecurityGroupRule],
                                       unique: bool = True) -> list[StoredRule]:
        """All or none: SecurityGroupRuleExists if the group has one of them already (unless
        not `unique`: Nova's os-security-group-rules never checked); then each stored and
        the project's hosts told."""
        existing = await self.rules_of([group]) if unique else []
        for rule in requested:
            same = [row for row in existing if _same(rule, row)]
            if same:
                raise SecurityGroupRuleExists(same[0].uuid)
        service = self.host.find(NetworkService)
        stored = []
        for rule in requested:
            if service is not None:
                stored.append(await service.add_security_group_rule(group, rule))
            else:  # an API process without the network service: no host to tell
                stored.append(await secgroups.add_rule(self.db, group, rule))
        return stored

    async def revoke_security_group_rules(self, group: SecurityGroup,
                                          requested: list[SecurityGroupRule]) -> None:
        """Each requested rule's stored copies removed, in order (SecurityGroupRuleMissing
        at the first the group does not have)."""
        existing = await self.rules_of([group])
        for rule in requested:
            matching = [row for row in existing if _same(rule, row)]
            if not matching:
                raise SecurityGroupRuleMissing(
                    "The specified rule does not exist in this security group.")
            for row in matching:
                await self.delete_security_group_rule(row)

    async def delete_security_group_rule(self, rule: StoredRule) -> None:
        service = self.host.find(NetworkService)
        if service is not None:
            await service.delete_security_group_rule(rule)
        else:
            await secgroups.delete_rule(self.db, rule)

    async def server_security_groups(self, server_uuid: str) -> list[SecurityGroup]:
        return await secgroups.groups_of_instance(self.db, server_uuid)

    async def change_membership(self, server_uuid: str, project_id: str, group: SecurityGroup,
                                add: bool) -> None:
        """addSecurityGroup / removeSecurityGroup (MembershipUnchanged), the project's
        hosts told."""
        member = any(g.id == group.id for g in await self.server_security_groups(server_uuid))
        if add == member:
            raise MembershipUnchanged(member)
        if add:
            await secgroups.add_instance(self.db, group, server_uuid)
        else:
            await secgroups.remove_instance(self.db, group, server_uuid)
        await self.service.refresh_project(project_id)


def _same(rule: SecurityGroupRule, stored: StoredRule) -> bool:
    """A requested rule the group has: the same protocol, ports and source (a CIDR, or a
    group, whatever CIDR a group rule's row holds)."""
    return (rule.protocol, rule.from_port, rule.to_port, rule.cidr, rule.group_id) == (
        stored.protocol, stored.from_port, stored.to_port,
        stored.cidr if stored.group_id is None else None, stored.group_id)
