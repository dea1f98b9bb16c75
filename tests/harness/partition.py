"""A network between the controller and one agent host that a test can partition.

The root namespace holds a bridge with the controller's address; the agent runs in a network
namespace of its own, on a veth plugged into that bridge. ``cut`` drops the traffic between them
with iptables rules inside the agent's namespace (the machine's own rules are never touched),
both ways or one way, without resetting any connection: the black hole TCP cannot tell from a
slow peer. ``heal`` removes the rules; ``destroy`` removes the namespace (its rules with it),
the veth and the bridge.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Literal

import pytest

Direction = Literal["both", "to_agent", "from_agent"]
NEEDED = ("ip", "iptables")


def require_root_and_tools() -> None:
    """The partition tests exist to exercise real namespaces and iptables: without them they
    fail and say what is missing, never skip (scripts/install-network.sh installs the tools)."""
    if os.geteuid() != 0:
        pytest.fail("needs root (network namespaces, iptables)")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)} (scripts/install-network.sh installs them)")


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@dataclass
class PartitionLab:
    suffix: str = field(default_factory=lambda: secrets.token_hex(2))
    octet: int = field(default_factory=lambda: 10 + secrets.randbelow(240))
    rules: list[list[str]] = field(default_factory=list)  # the DROP rules in place (iptables args)
    made: list[str] = field(default_factory=list)  # what destroy removes: "ns:NAME" / "link:NAME"

    @property
    def controller_address(self) -> str:
        return f"10.253.{self.octet}.1"

    @property
    def agent_address(self) -> str:
        return f"10.253.{self.octet}.11"

    @property
    def namespace(self) -> str:
        return f"cldpart{self.suffix}"

    @property
    def in_namespace(self) -> list[str]:
        """The prefix that runs a command inside the agent's namespace."""
        return ["ip", "netns", "exec", self.namespace]

    def create(self) -> None:
        bridge, outside, inside = f"cpbr{self.suffix}", f"cpv{self.suffix}", f"cpi{self.suffix}"
        run("ip", "link", "add", bridge, "type", "bridge")
        self.made.append(f"link:{bridge}")
        run("ip", "addr", "add", f"{self.controller_address}/24", "dev", bridge)
        run("ip", "link", "set", bridge, "up")
        run("ip", "netns", "add", self.namespace)
        self.made.append(f"ns:{self.namespace}")
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        self.made.append(f"link:{outside}")  # deleting one end deletes the pair
        run("ip", "link", "set", inside, "netns", self.namespace)
        ns = ["ip", "-n", self.namespace]
        run(*ns, "link", "set", inside, "name", "eth0")
        run(*ns, "addr", "add", f"{self.agent_address}/24", "dev", "eth0")
        run(*ns, "link", "set", "eth0", "up")
        run(*ns, "link", "set", "lo", "up")
        run("ip", "link", "set", outside, "master", bridge, "up")

    def cut(self, direction: Direction) -> None:
        """Drop the traffic from the controller to the agent, from the agent, or both."""
        ctl = self.controller_address
        rules = []
        if direction in ("both", "to_agent"):
            rules.append(["INPUT", "-s", ctl, "-j", "DROP"])
        if direction in ("both", "from_agent"):
            rules.append(["OUTPUT", "-d", ctl, "-j", "DROP"])
        for rule in rules:
            run(*self.in_namespace, "iptables", "-w", "-I", *rule)
            self.rules.append(rule)

    def heal(self) -> None:
        rules, self.rules = self.rules, []
        for rule in rules:
            run(*self.in_namespace, "iptables", "-w", "-D", *rule)

    def destroy(self) -> None:
        for item in reversed(self.made):
            kind, name = item.split(":", 1)
            argv = ["ip", "netns", "del", name] if kind == "ns" else ["ip", "link", "del", name]
            subprocess.run(argv, capture_output=True, timeout=30)
        self.made.clear()
