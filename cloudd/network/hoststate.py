"""Build one host's desired network state from the database (controller side)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from pydantic import ValidationError

from cloudd.config import CloudConfig
from cloudd.db import Executor
from cloudd.network import secgroups, store
from cloudd.network.ipam import FLAT
from cloudd.network.metadata import shared_secret
from cloudd.network.metadata_signing import host_key
from cloudd.network.store import secgroups as sg_store
from cloudd.rpc.contracts.network import (
    DhcpHost,
    FirewallRule,
    FloatingSpec,
    GuestPort,
    HostNetworkState,
    InstanceFirewall,
    NetworkSpec,
    device_name,
)
from cloudd.vocab.secgroup_rules import ANY_CIDR, RuleError, SecurityGroupRule, stored_rule

LOG = logging.getLogger(__name__)


async def host_state(db: Executor, cfg: CloudConfig, host: str) -> HostNetworkState:
    net_cfg = cfg.network
    state = HostNetworkState(
        manager=net_cfg.network_manager,
        metadata_host=net_cfg.metadata_host or cfg.default.my_ip,
        metadata_port=net_cfg.metadata_port, public_interface=net_cfg.public_interface,
        metadata_secret=host_key(await asyncio.to_thread(shared_secret, cfg), host),
        dhcp_lease_time=net_cfg.dhcp_lease_time, dhcp_domain=net_cfg.dhcp_domain,
    )
    # The networks this host serves (gateway host) or has guests on.
    for net in await store.host_networks(db, host):
        state.networks.append(await _network_spec(db, net, host, net_cfg.dns_server))
    for fip in await store.host_floating_ips(db, host):
        state.floating_ips.append(FloatingSpec(
            address=fip.address, fixed_address=fip.fixed_address, interface=fip.interface))
    if state.manager != FLAT:
        state.firewalls = await _firewalls(db, host)
    state.ports = await _guest_ports(db, host)
    return state


async def _guest_ports(db: Executor, host: str) -> list[GuestPort]:
    """This host's guest interfaces with the addresses each may use (anti-spoofing, all managers)."""
    ports: dict[str, GuestPort] = {}
    for row in await store.host_guest_addresses(db, host, by_interface=True):
        port = ports.get(row.vif_uuid)
        if port is None:
            ports[row.vif_uuid] = GuestPort(device=device_name(row.vif_uuid), bridge=row.bridge,
                                            mac=row.mac.lower(), ips=[row.address])
        else:
            port.ips.append(ipaddress.IPv4Address(row.address))
    return list(ports.values())


async def _network_spec(db: Executor, net: dict[str, Any], host: str, dns_server: str) -> NetworkSpec:
    rows = await store.dhcp_entries(db, net["id"])
    dns = [d for d in (net["dns1"], net["dns2"]) if d] or ([dns_server] if dns_server else [])
    return NetworkSpec(
        id=net["id"], uuid=net["uuid"], label=net["label"], bridge=net["bridge"],
        bridge_interface=net["bridge_interface"], vlan=net["vlan"], cidr=net["cidr"],
        gateway=net["gateway"], netmask=net["netmask"],
        prefixlen=ipaddress.ip_network(net["cidr"]).prefixlen, dhcp_start=net["dhcp_start"],
        dns=dns, gateway_host=net["host"] in (None, host),
        hosts=[DhcpHost(mac=r.mac, ip=r.address, hostname=r.hostname or "guest",
                        instance_uuid=r.instance_uuid, project_id=r.project_id) for r in rows],
    )


async def _firewalls(db: Executor, host: str) -> list[InstanceFirewall]:
    firewalls = []
    for guest in await store.host_guest_addresses(db, host):
        rules = await _guest_rules(db, guest)
        try:
            firewalls.append(InstanceFirewall(uuid=guest.instance_uuid, ip=guest.address,
                                              mac=guest.mac, bridge=guest.bridge, rules=rules))
        except ValidationError as exc:  # not a filterable guest: no chain, and no way in
            LOG.error("instance %s on host %s left out of the firewall: %s",
                      guest.instance_uuid, host, exc)
    return firewalls


async def _guest_rules(db: Executor, guest: store.GuestAddress) -> list[FirewallRule]:
    groups = await secgroups.groups_of_instance(db, guest.instance_uuid)
    rules: list[FirewallRule] = []
    for row in await secgroups.rules_of(db, [g.id for g in groups]):
        rule = _checked(row, guest.instance_uuid)
        if rule is None:
            continue  # left out: the guest's chain still ends in DROP, so it stays closed
        if rule.group_id is None:
            rules.append(rule.for_source(rule.cidr or ANY_CIDR))
            continue
        for member in await _group_member_ips(db, rule.group_id):
            if member != guest.address:
                rules.append(rule.for_source(f"{member}/32"))
    return rules


def _checked(row: secgroups.StoredRule, instance_uuid: str) -> SecurityGroupRule | None:
    """The stored rule re-parsed; a row written before rules were checked (or behind the APIs'
    back) that does not parse is logged and never reaches the firewall."""
    try:
        return stored_rule(row)
    except (RuleError, ValidationError) as exc:
        LOG.error("security group rule %s (group %s) is invalid and not applied to instance %s: %s",
                  row.uuid, row.parent_uuid, instance_uuid, exc)
        return None


async def _group_member_ips(db: Executor, group_id: int) -> list[str]:
    return [a for a in await sg_store.member_addresses(db, group_id) if _is_ipv4(a)]


def _is_ipv4(address: Any) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True
