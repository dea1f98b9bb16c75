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
import re

from cloudd.rpc.contracts.network import FirewallRule, HostNetworkState
from cloudd.vocab.secgroup_rules import ANY_CIDR

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
    """iptables match options from a parsed rule: each value is an int, a member of a fixed
    protocol set or a canonical CIDR (cloudd.vocab.secgroup_rules), never text from a user."""
    parts = []
    if rule.cidr != ANY_CIDR:
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


class FirewallError(RuntimeError):
    """A host could not load its rule set; its guests were cut off instead (``fallback``)."""

    def __init__(self, reason: str, line: str = "", instance: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line  # the restore line iptables refused, when it said which
        self.instance = instance  # the guest whose chain that line is in, if any

    def describe(self) -> str:
        where = f"rule `{self.line}`" if self.line else "the rule set"
        whose = f" of instance {self.instance}" if self.instance else ""
        return f"{where}{whose} refused: {self.reason}"


def _refused_line(output: str, lines: list[str], state: HostNetworkState) -> tuple[str, str]:
    """The restore line iptables names in ``Error occurred at line: N``, and its guest."""
    found = re.search(r"line:? (\d+)", output)
    if found is None or not 1 <= int(found.group(1)) <= len(lines):
        return "", ""
    line = lines[int(found.group(1)) - 1]
    chain = re.match(r"-A cloudd-i-(\d+) ", line)
    if chain is None or int(chain.group(1)) >= len(state.firewalls):
        return line, ""
    return line, state.firewalls[int(chain.group(1))].uuid


def render_fallback(state: HostNetworkState) -> list[str]:
    """What a host loads when its rule set is refused: nothing is forwarded to or from any guest
    bridge, so a guest whose rules are not in force is cut off, never open."""
    lines = ["*filter", ":cloudd-FORWARD - [0:0]"]  # cloudd-INPUT's isolation rules stay
    for bridge in sorted({net.bridge for net in state.networks}
                         | {guest.bridge for guest in state.firewalls}):
        lines.append(f"-A cloudd-FORWARD -i {bridge} -j DROP")
        lines.append(f"-A cloudd-FORWARD -o {bridge} -j DROP")
    return [*lines, "COMMIT"]


async def _ensure_hooks() -> None:
    for table, hooks in HOOKS.items():
        for builtin, chain in hooks:
            code, _ = await _run("iptables", "-t", table, "-C", builtin, "-j", chain)
            if code != 0:
                await _run("iptables", "-t", table, "-I", builtin, "1", "-j", chain)


async def _fail_closed(state: HostNetworkState, error: FirewallError) -> None:
    LOG.error("firewall not applied, guests cut off: %s", error.describe())
    try:
        code, out = await _run("iptables-restore", "--noflush",
                               stdin="\n".join(render_fallback(state)) + "\n")
        if code == 0:
            await _ensure_hooks()
            return
    except OSError as exc:
        out = str(exc)
    # Nothing left that this host can load: say so as loudly as we can.
    LOG.critical("the fallback firewall was refused too, guests may be open: %s", out.strip())


async def apply(state: HostNetworkState) -> None:
    """Load the host's rules; FirewallError (after cutting the guests off) when they are refused."""
    wanted = {f"cloudd-i-{index}" for index in range(len(state.firewalls))}
    stale = [c for c in await _stale_guest_chains() if c not in wanted]
    lines = render_nat(state) + render_filter(state)
    try:
        code, out = await _run("iptables-restore", "--noflush", stdin="\n".join(lines) + "\n")
    except OSError as exc:  # no iptables-restore at all
        code, out = 1, str(exc)
    if code != 0:
        error = FirewallError(" ".join(out.split())[:400] or f"exit status {code}",
                              *_refused_line(out, lines, state))
        await _fail_closed(state, error)
        raise error
    await _ensure_hooks()
    for chain in stale:
        await _run("iptables", "-t", "filter", "-F", chain)
        await _run("iptables", "-t", "filter", "-X", chain)
