"""Per-port anti-spoofing on the host's bridges (what libvirt's ``clean-traffic`` nwfilter did for Nova).

Each guest interface may only send frames from its own MAC; IPv4 from its own fixed IPs (and DHCP
discovery from 0.0.0.0); ARP whose sender MAC and IP are its own. Everything else it sends (another
MAC, a neighbour's IP, a forged ARP reply, IPv6, VLAN tags) is dropped before the bridge sees it.

The rules live in one nftables ``bridge`` table, ``cloudd_antispoof``, replaced in a single atomic
transaction on every apply (so applying the same state twice gives the same rules). They are handed
to ``nft -j -f -`` as JSON built from typed values: a value is one JSON string, never rule text, so
no field can carry a second rule. A port named like a guest port (``tap*``) on a bridge of
this host that the state does not know yet gets nothing through: a new guest sends nothing until its
rules are in. If the table cannot be loaded, the state's guest ports are set down: fail closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pyroute2 import IPRoute

from cloudd.rpc.contracts.network import PORT_PREFIX, GuestPort, HostNetworkState

LOG = logging.getLogger(__name__)
TABLE = "cloudd_antispoof"
FAMILY = "bridge"
NFT_COMMAND = ["nft", "-j", "-f", "-"]


class AntispoofError(Exception):
    """The rule set could not be loaded; the guest ports were cut."""


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _rule(chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
    return {"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain, "expr": list(expr)}}}


def _chain(name: str, **base: Any) -> dict[str, Any]:
    return {"add": {"chain": {"family": FAMILY, "table": TABLE, "name": name, **base}}}


def _port_rules(port: GuestPort) -> list[dict[str, Any]]:
    chain = f"port-{port.device}"
    ips = [str(ip) for ip in port.ips]
    own_ips: Any = ips[0] if len(ips) == 1 else {"set": ips}
    drop, accept = {"drop": None}, {"accept": None}
    return [
        _chain(chain),
        _rule(chain, _match(_payload("ether", "saddr"), port.mac, "!="), drop),
        # ARP: Ethernet/IPv4 only, sender hardware and protocol address both this port's own.
        _rule(chain, _match(_payload("ether", "type"), "arp"),
              _match(_payload("arp", "htype"), 1), _match(_payload("arp", "ptype"), "ip"),
              _match(_payload("arp", "hlen"), 6), _match(_payload("arp", "plen"), 4),
              _match(_payload("arp", "saddr ether"), port.mac),
              _match(_payload("arp", "saddr ip"), own_ips), accept),
        _rule(chain, _match(_payload("ether", "type"), "ip"),
              _match(_payload("ip", "saddr"), own_ips), accept),
        # A guest without an address yet asks DHCP from 0.0.0.0 to the broadcast address.
        _rule(chain, _match(_payload("ether", "type"), "ip"),
              _match(_payload("ip", "saddr"), "0.0.0.0"),
              _match(_payload("ip", "daddr"), "255.255.255.255"),
              _match(_payload("udp", "sport"), 68), _match(_payload("udp", "dport"), 67), accept),
        _rule(chain, drop),
    ]


def ruleset(state: HostNetworkState) -> dict[str, Any]:
    """The whole table as one nft JSON transaction: (re)created empty, then filled."""
    table = {"table": {"family": FAMILY, "name": TABLE}}
    commands: list[dict[str, Any]] = [{"add": table}, {"delete": table}, {"add": table}]
    # Before every other bridge hook (filter is -200), so nothing sees a spoofed frame.
    commands.append(_chain("guest-ports", type="filter", hook="prerouting", prio=-300,
                           policy="accept"))
    for port in state.ports:
        commands += _port_rules(port)
        commands.append(_rule("guest-ports", _match(_meta("iifname"), port.device),
                              {"jump": {"target": f"port-{port.device}"}}))
    if state.networks or state.ports:
        # A guest port not (yet) in the state: nothing through until its rules are loaded. (This
        # kernel has no ``meta ibrname``, so it holds for tap ports on any bridge of the host.)
        commands.append(_rule("guest-ports", _match(_meta("iifname"), PORT_PREFIX + "*"),
                              {"drop": None}))
    return {"nftables": commands}


async def _load(document: dict[str, Any]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *NFT_COMMAND, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(json.dumps(document).encode())
    return proc.returncode or 0, (out + err).decode(errors="replace").strip()


def _set_links(devices: list[str], up: bool) -> list[str]:
    """Sets the existing ones of ``devices`` up or down; returns those it found."""
    found = []
    with IPRoute() as ipr:
        for device in devices:
            index = ipr.link_lookup(ifname=device)
            if index:
                ipr.link("set", index=index[0], state="up" if up else "down")
                found.append(device)
    return found


async def apply(state: HostNetworkState) -> None:
    """Load the state's rules; on any failure cut the guest ports and raise ``AntispoofError``."""
    devices = [port.device for port in state.ports]
    try:
        code, out = await _load(ruleset(state))
    except OSError as exc:  # no nft on this host
        code, out = -1, str(exc)
    if code != 0:
        cut = await asyncio.to_thread(_set_links, devices, False)
        LOG.error("anti-spoofing rules not loaded (%s); guest ports set down: %s", out,
                  ", ".join(cut) or "none present")
        raise AntispoofError(f"nft failed: {out}")
    # Ports cut by an earlier failure come back once their rules are in.
    await asyncio.to_thread(_set_links, devices, True)
