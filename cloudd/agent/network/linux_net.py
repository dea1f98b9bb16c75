"""Host links with pyroute2: bridges, segment links (802.1Q or VXLAN), addresses, forwarding.

Every function is idempotent (Nova's ``LinuxBridgeInterfaceDriver.ensure_*``). pyroute2's
synchronous API runs its own event loop, so each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

LOG = logging.getLogger(__name__)
EEXIST, EADDRNOTAVAIL, EOPNOTSUPP = 17, 99, 95


class SegmentUnsupported(Exception):
    """The kernel cannot make this kind of segment link (no 802.1Q here, for instance)."""


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _ensure_bridge(name: str, enslave: str | None, address: str | None, prefixlen: int) -> None:
    with IPRoute() as ipr:
        index = _index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", br_forward_delay=0, br_stp_state=0)
            except NetlinkError as exc:
                if exc.code != EEXIST:
                    raise
            index = _index(ipr, name)
        assert index is not None
        if enslave:
            port = _index(ipr, enslave)
            if port is None:
                LOG.warning("interface %s for bridge %s does not exist", enslave, name)
            else:
                ipr.link("set", index=port, master=index, state="up")
        if address:
            _add_address(ipr, index, address, prefixlen)
        ipr.link("set", index=index, state="up")


def _add_address(ipr: IPRoute, index: int, address: str, prefixlen: int) -> None:
    present = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
    if (address, prefixlen) in present:
        return
    try:
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
    except NetlinkError as exc:
        if exc.code != EEXIST:
            raise


def _ensure_segment(kind: str, name: str, segment_id: int, interface: str) -> None:
    with IPRoute() as ipr:
        if _index(ipr, name) is not None:
            return
        parent = _index(ipr, interface)
        if parent is None:
            raise SegmentUnsupported(f"interface {interface} does not exist")
        try:
            if kind == "vxlan":
                ipr.link("add", ifname=name, kind="vxlan", vxlan_id=segment_id, vxlan_link=parent,
                         vxlan_port=4789, vxlan_learning=1)
            else:
                ipr.link("add", ifname=name, kind="vlan", vlan_id=segment_id, link=parent)
        except NetlinkError as exc:
            if exc.code == EOPNOTSUPP:
                raise SegmentUnsupported(f"this kernel cannot make {kind} links") from exc
            if exc.code != EEXIST:
                raise


def _addresses(dev: str) -> set[str]:
    with IPRoute() as ipr:
        index = _index(ipr, dev)
        if index is None:
            return set()
        return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index)}


def _set_address(dev: str, address: str, prefixlen: int, present: bool) -> None:
    with IPRoute() as ipr:
        index = _index(ipr, dev)
        if index is None:
            LOG.warning("interface %s for %s does not exist", dev, address)
            return
        if present:
            _add_address(ipr, index, address, prefixlen)
            return
        try:
            ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
        except NetlinkError as exc:
            if exc.code != EADDRNOTAVAIL:
                raise


def _uplink() -> str | None:
    with IPRoute() as ipr:
        for route in ipr.get_default_routes(family=2, table=254):
            oif = route.get_attr("RTA_OIF")
            if oif is not None:
                links = ipr.get_links(oif)
                if links:
                    return str(links[0].get_attr("IFLA_IFNAME"))
    return None


async def uplink() -> str | None:
    """The interface of the default route: where guests' traffic leaves the host."""
    return await asyncio.to_thread(_uplink)


async def ensure_bridge(name: str, enslave: str | None = None, address: str | None = None,
                        prefixlen: int = 24) -> None:
    await asyncio.to_thread(_ensure_bridge, name, enslave, address, prefixlen)


async def ensure_segment(kind: str, name: str, segment_id: int, interface: str) -> None:
    await asyncio.to_thread(_ensure_segment, kind, name, segment_id, interface)


async def addresses(dev: str) -> set[str]:
    return await asyncio.to_thread(_addresses, dev)


async def set_address(dev: str, address: str, prefixlen: int, present: bool = True) -> None:
    await asyncio.to_thread(_set_address, dev, address, prefixlen, present)


async def enable_forwarding() -> None:
    await asyncio.to_thread(Path("/proc/sys/net/ipv4/ip_forward").write_text, "1\n")
