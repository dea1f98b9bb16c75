"""NAT, isolation and security groups with iptables (nf_tables backend), in cloudd's own chains.

Like Nova's ``IptablesManager``, the chains are rewritten wholesale on every apply: the rules are
rendered from the desired state and loaded with ``iptables-restore --noflush``, which empties the
chains it declares and leaves everybody else's alone. The jumps from the built-in chains are
added once. Applying the same state twice gives the same rules, so an agent restart changes
nothing.

nat:    cloudd-PREROUTING  metadata redirect, floating DNAT      (from PREROUTING)
        cloudd-OUTPUT      floating DNAT for the host itself       (from OUTPUT)
        cloudd-POSTROUTING cloudd-float-snat, no-SNAT accepts, SNAT (from POSTROUTING)
filter: cloudd-INPUT       DHCP in, other networks' gateways out   (from INPUT)
        cloudd-FORWARD     network isolation, per-guest chains     (from FORWARD)
        cloudd-i-<n>       one guest's security-group rules, then DROP
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from cloudd.network.rpcapi import FirewallRule, HostNetworkState

LOG = logging.getLogger(__name__)
METADATA_IP = "169.254.169.254"
HOOKS = {"nat": [("PREROUTING", "cloudd-PREROUTING"), ("OUTPUT", "cloudd-OUTPUT"),
                 ("POSTROUTING", "cloudd-POSTROUTING")],
         "filter": [("INPUT", "cloudd-INPUT"), ("FORWARD", "cloudd-FORWARD")]}


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def render_nat(state: HostNetworkState) -> list[str]:
    lines = ["*nat"] + [f":{chain} - [0:0]" for _, chain in HOOKS["nat"]] + [":cloudd-float-snat - [0:0]"]
    # Guests' metadata requests go to this host's own proxy, which signs the instance id.
    lines.append(f"-A cloudd-PREROUTING -d {METADATA_IP}/32 -p tcp -m tcp --dport 80"
                 f" -j REDIRECT --to-ports {int(state.metadata_proxy_port)}")
    for fip in state.floating_ips:
        for chain in ("cloudd-PREROUTING", "cloudd-OUTPUT"):
            lines.append(f"-A {chain} -d {fip.address}/32 -j DNAT --to-destination {fip.fixed_address}")
        lines.append(f"-A cloudd-float-snat -s {fip.fixed_address}/32 -j SNAT --to-source {fip.address}")
    lines.append("-A cloudd-POSTROUTING -j cloudd-float-snat")
    cidrs = [n.cidr for n in state.networks]
    for cidr in cidrs:
        if not _is_loopback(state.metadata_host):
            lines.append(f"-A cloudd-POSTROUTING -s {cidr} -d {state.metadata_host}/32 -j ACCEPT")
        for other in cidrs:
            lines.append(f"-A cloudd-POSTROUTING -s {cidr} -d {other} -m conntrack ! --ctstate DNAT"
                         " -j ACCEPT")
        if state.public_interface:
            lines.append(f"-A cloudd-POSTROUTING -s {cidr} -o {state.public_interface} -j MASQUERADE")
    return [*lines, "COMMIT"]


def _rule_match(rule: FirewallRule) -> str:
    parts = []
    if rule.cidr and rule.cidr != "0.0.0.0/0":
        parts.append(f"-s {rule.cidr}")
    if rule.protocol:
        parts.append(f"-p {rule.protocol}")
        if rule.protocol in ("tcp", "udp") and rule.from_port is not None:
            high = rule.to_port if rule.to_port is not None else rule.from_port
            parts.append(f"-m {rule.protocol} --dport {rule.from_port}:{high}")
        elif rule.protocol == "icmp" and rule.from_port not in (None, -1):
            code = "" if rule.to_port in (None, -1) else f"/{rule.to_port}"
            parts.append(f"--icmp-type {rule.from_port}{code}")
    return " ".join(parts)


def render_filter(state: HostNetworkState) -> list[str]:
    chains = [chain for _, chain in HOOKS["filter"]]
    guest_chains = [f"cloudd-i-{index}" for index in range(len(state.firewalls))]
    lines = ["*filter"] + [f":{chain} - [0:0]" for chain in chains + guest_chains]
    for net in state.networks:
        lines.append(f"-A cloudd-INPUT -i {net.bridge} -p udp -m udp --dport 67 -j ACCEPT")
        for other in state.networks:
            if other.bridge == net.bridge:
                continue
            # Projects' networks are isolated: no routing between them, no other gateway.
            lines.append(f"-A cloudd-FORWARD -i {net.bridge} -o {other.bridge} -j DROP")
            lines.append(f"-A cloudd-INPUT -i {net.bridge} -d {other.gateway}/32 -j DROP")
    for chain, guest in zip(guest_chains, state.firewalls, strict=True):
        lines.append(f"-A cloudd-FORWARD -o {guest.bridge} -d {guest.ip}/32 -j {chain}")
        lines.append(f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
        for rule in guest.rules:
            lines.append(f"-A {chain} {_rule_match(rule)} -j ACCEPT".replace("  ", " "))
        lines.append(f"-A {chain} -j DROP")
    return [*lines, "COMMIT"]


async def _run(*argv: str, stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, (out + err).decode()


async def _stale_guest_chains() -> list[str]:
    """Per-guest chains left over from a state with more guests: flushed and removed."""
    _, out = await _run("iptables", "-t", "filter", "-S")
    return [line.split()[1] for line in out.splitlines()
            if line.startswith("-N cloudd-i-")]


async def apply(state: HostNetworkState) -> None:
    wanted = {f"cloudd-i-{index}" for index in range(len(state.firewalls))}
    stale = [c for c in await _stale_guest_chains() if c not in wanted]
    text = "\n".join(render_nat(state) + render_filter(state)) + "\n"
    code, out = await _run("iptables-restore", "--noflush", stdin=text)
    if code != 0:
        raise RuntimeError(f"iptables-restore failed: {out.strip()}\n{text}")
    for table, hooks in HOOKS.items():
        for builtin, chain in hooks:
            code, _ = await _run("iptables", "-t", table, "-C", builtin, "-j", chain)
            if code != 0:
                await _run("iptables", "-t", table, "-I", builtin, "1", "-j", chain)
    for chain in stale:
        await _run("iptables", "-t", "filter", "-F", chain)
        await _run("iptables", "-t", "filter", "-X", chain)
