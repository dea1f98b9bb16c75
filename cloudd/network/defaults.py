"""The networks a cloud has without anyone asking: the default network and floating pool that
`cloudd manage bootstrap` creates once, and each project's own network at its first server.

DevStack ran ``nova-manage network create private`` and ``nova-manage floating create`` for a
newcomer; here bootstrap does it from ``[network]`` (``default_network``, ``fixed_range``,
``network_size``, ``flat_network_bridge``, ``floating_range``, ``default_floating_pool``). The
ranges must be the cloud's own: bootstrap refuses a range that overlaps an address or a route
of the host, naming the option to change. Under VLANManager nova-network gave each project its
own network when it first booted; ``project_networks`` does the same for FlatDHCP (one bridge
per project, ``<flat_network_bridge>-<n>``, isolated by the hosts' firewalls) and for VLAN.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cloudd import errors
from cloudd.config.models import NetworkSection
from cloudd.db import Database, DuplicateError
from cloudd.network import floating, ipam, store
from cloudd.vocab.network_errors import NetworkError

DEFAULT_LABEL = "private"  # what DevStack called it, and what servers' addresses show


class RangeOverlap(errors.Conflict, NetworkError):
    """A configured range collides with the host's own addresses or routes."""


@dataclass(frozen=True)
class HostRange:
    network: ipaddress.IPv4Network
    where: str  # "address 192.0.2.2/24 on eth0" or "route 10.1.0.0/16 via eth1"
    device: str  # "eth0"


def _host_ranges() -> list[HostRange]:
    from pyroute2 import IPRoute

    found = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for addr in ipr.get_addr(family=2):
            text = f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}"
            net = ipaddress.IPv4Network(text, strict=False)
            if not net.is_loopback:
                device = names.get(addr["index"], "?")
                found.append(HostRange(net, f"address {text} on {device}", device))
        for route in ipr.get_routes(family=2, table=254):  # the main table
            if route["dst_len"] == 0:
                continue  # the default route overlaps everything by design
            net = ipaddress.IPv4Network(f"{route.get_attr('RTA_DST')}/{route['dst_len']}")
            dev = names.get(route.get_attr("RTA_OIF"), "?")
            found.append(HostRange(net, f"route {net} via {dev}", dev))
    return found


async def host_ranges() -> list[HostRange]:
    return await asyncio.to_thread(_host_ranges)


def check_free(option: str, cidr: str, taken: list[HostRange]) -> None:
    """RangeOverlap naming ``option`` when ``cidr`` collides with the host's networks."""
    wanted = ipaddress.IPv4Network(cidr)
    for item in taken:
        if wanted.overlaps(item.network):
            raise RangeOverlap(
                f"[network] {option} = {wanted} overlaps this host's {item.where}: set "
                f"[network] {option} to a range the host does not use (or default_network = "
                "false to create networks yourself)")


def _on_own_bridge(net_cfg: NetworkSection, item: HostRange) -> bool:
    """Whether ``item`` sits on a bridge this configuration names for its networks
    (``flat_network_bridge`` or a project's ``<bridge>-<n>``): an earlier cloud's gateway, left
    by its agent (bridges outlive the agent, as nova-network's did), which the new cloud's agent
    takes over. It is no collision: a fresh state directory on the same host must bootstrap."""
    bridge = net_cfg.flat_network_bridge
    suffix = item.device.removeprefix(f"{bridge}-")
    return item.device == bridge or (suffix != item.device and suffix.isdigit())


def _blocks(net_cfg: NetworkSection) -> Iterator[ipaddress.IPv4Network]:
    whole = ipaddress.IPv4Network(net_cfg.fixed_range)
    prefix = 32 - max(2, (net_cfg.network_size - 1).bit_length())
    yield from whole.subnets(new_prefix=max(prefix, whole.prefixlen))


async def _free_block(db: Database, net_cfg: NetworkSection) -> tuple[int, str]:
    """The first block of fixed_range no network uses, and its index (the bridge suffix)."""
    used = [ipaddress.IPv4Network(cidr) for cidr in await store.network_cidrs(db)]
    for index, block in enumerate(_blocks(net_cfg)):
        if not any(block.overlaps(other) for other in used):
            return index, str(block)
    raise ipam.NoNetworkAvailable(
        f"fixed_range {net_cfg.fixed_range} is full: no free block of {net_cfg.network_size} "
        "addresses for a new project network")


def _bridge(net_cfg: NetworkSection, index: int) -> str:
    return net_cfg.flat_network_bridge if index == 0 else f"{net_cfg.flat_network_bridge}-{index}"


async def create_block_network(db: Database, net_cfg: NetworkSection,
                               project_id: str | None) -> dict[str, Any]:
    """A network on the next free block of fixed_range (another creator taking the same
    block at the same moment makes this one take the next)."""
    for _ in range(20):
        index, cidr = await _free_block(db, net_cfg)
        try:
            rows = await ipam.create_networks(
                db, net_cfg.network_manager, DEFAULT_LABEL, cidr,
                network_size=net_cfg.network_size, bridge=_bridge(net_cfg, index),
                bridge_interface=net_cfg.flat_interface or net_cfg.vlan_interface,
                vlan_start=net_cfg.vlan_start, project_id=project_id)
        except NetworkError as exc:
            if "already exists" in str(exc):
                continue
            raise
        except DuplicateError:
            continue
        return rows[0]
    raise NetworkError(f"no block of fixed_range {net_cfg.fixed_range} could be taken")


async def ensure_default_network(db: Database, net_cfg: NetworkSection,
                                 admin_project_id: str) -> list[str]:
    """Bootstrap's networking, once; what it did (or found), one line each. Both ranges are
    checked before either is created, so a refusal leaves nothing half made."""
    if not net_cfg.default_network:
        return ["network: none created ([network] default_network = false)"]
    pool = net_cfg.default_floating_pool
    existing = await store.count_networks(db)
    make_pool = bool(net_cfg.floating_range) and not await store.pool_size(db, pool)
    if not existing or make_pool:
        taken = await host_ranges()
        if not existing:
            check_free("fixed_range", net_cfg.fixed_range,
                       [item for item in taken if not _on_own_bridge(net_cfg, item)])
        if make_pool:
            check_free("floating_range", net_cfg.floating_range, taken)
    done = []
    if existing:
        done.append(f"network: {existing} network(s) exist, none created")
    else:
        owner = admin_project_id if net_cfg.project_networks else None
        row = await create_block_network(db, net_cfg, owner)
        whose = "project admin" if owner else "every project"
        done.append(f"network {row['label']}: {row['cidr']} on {row['bridge']} ({whose}),"
                    f" {net_cfg.network_manager}")
    if not net_cfg.floating_range:
        done.append("floating pool: none created ([network] floating_range is empty)")
    elif not make_pool:
        done.append(f"floating pool {pool}: exists, unchanged")
    else:
        count = await floating.create_floating_ips(db, net_cfg.floating_range, pool, None)
        done.append(f"floating pool {pool}: {net_cfg.floating_range}, {count} addresses")
    return done


async def ensure_project_network(db: Database, net_cfg: NetworkSection,
                                 project_id: str) -> dict[str, Any] | None:
    """The project's own network, made at its first server when it can use none (None: it
    has one, networking is off, or project_networks is false)."""
    manager = net_cfg.network_manager
    if not net_cfg.project_networks or manager == ipam.FLAT:
        return None  # FlatManager's networks are the admin's bridges, injected by hand
    if not await store.count_networks(db):
        return None  # a cloud without networking (default_network = false) stays so
    # VLAN: its own, or a free one VLANManager associates at allocation
    if await store.project_has_usable_network(db, project_id, vlan=manager == ipam.VLAN):
        return None
    return await create_block_network(db, net_cfg, project_id)
