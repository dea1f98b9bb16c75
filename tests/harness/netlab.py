"""Real networking for the network tests: a controller + agent (fake driver) whose network
manager makes real bridges, dnsmasq and iptables rules, and network namespaces acting as guests
(a veth pair: one end in the bridge, the other in the namespace with the instance's MAC, running
busybox udhcpc) or as the outside world. Every address used is in these namespaces, on bridges
made here, or in TEST-NET-2 (198.51.100.0/24; this machine's own uplink is in TEST-NET-1);
nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest

from . import requires
from .cloud import Cloud, start_cloud
from .config import free_port, make_config

NEEDED = ("dnsmasq", "busybox", "iptables", "ip", "dhcp_release", "nft")
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    busybox ip addr flush dev "$interface"
    busybox ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && busybox ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""


def require_network_host() -> None:
    """Root and every tool of NEEDED, which scripts/install-network.sh installs; else the test fails."""
    requires.root("bridges, namespaces and iptables")
    for tool in NEEDED:
        requires.installed(tool, "scripts/install-network.sh")


def sh(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


async def ash(*argv: str, check: bool = True, limit: float = 20) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(sh, *argv, check=check, timeout=limit)


class Lab:
    """Namespaces and links made by one test, all removed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tag = f"{random.randint(0, 0xFFFF):04x}"
        self.tmp = tmp
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.script = tmp / "udhcpc.script"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    async def guest(self, name: str, bridge: str, mac: str, device: str | None = None) -> str:
        """A namespace plugged into ``bridge`` with ``mac``; returns the address DHCP gave it.
        ``device``: the host end's name, the tap name the host state gives the guest's port."""
        ns, host_end = f"cdt{self.tag}{name}", device or f"cdv{self.tag}{name}"
        await ash("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        await ash("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(host_end)
        await ash("ip", "link", "set", host_end, "master", bridge, "up")
        await ash("ip", "-n", ns, "link", "set", "eth0", "address", mac)
        await ash("ip", "-n", ns, "link", "set", "eth0", "up")
        await ash("ip", "-n", ns, "link", "set", "lo", "up")
        await ash("ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10",
                  "-T", "1", "-s", str(self.script), limit=30)
        out = (await ash("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0")).stdout
        return out.split()[3].split("/")[0]

    async def outside(self, host_address: str, ns_address: str) -> tuple[str, str]:
        """The outside world: a namespace on a veth whose host end is the public interface."""
        ns, host_end = f"cdt{self.tag}out", f"cdp{self.tag}"
        await ash("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        await ash("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(host_end)
        await ash("ip", "addr", "add", f"{host_address}/24", "dev", host_end)
        await ash("ip", "link", "set", host_end, "up")
        await ash("ip", "-n", ns, "addr", "add", f"{ns_address}/24", "dev", "eth0")
        await ash("ip", "-n", ns, "link", "set", "eth0", "up")
        await ash("ip", "-n", ns, "route", "add", "default", "via", host_address)
        return ns, host_end

    def cleanup(self) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        for link in self.links:
            sh("ip", "link", "del", link, check=False)


async def tcp_ok(ns: str, address: str, port: int) -> bool:
    """A TCP connect from ``ns`` that gets the server's greeting within a second."""
    code = ("import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1)\n"
            "sys.exit(0 if s.recv(16)==b'hello' else 1)")
    result = await ash("ip", "netns", "exec", ns, "python3", "-c", code, address, str(port),
                       check=False, limit=10)
    return result.returncode == 0


def serve_tcp(ns: str, port: int) -> subprocess.Popen[bytes]:
    code = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('0.0.0.0',{port}));s.listen(8)\n"
            "while True:\n c,_=s.accept();c.sendall(b'hello');c.close()")
    return subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code])


async def ping(ns: str, address: str) -> bool:
    result = await ash("ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "1", address,
                       check=False)
    return result.returncode == 0


def teardown_host(state_dir: Path, bridges: list[str]) -> None:
    """Stop the test's dnsmasqs, remove its bridges and cloudd's chains."""
    for pid_file in (state_dir / "networks").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), 15)
        except (OSError, ValueError):
            pass
    for bridge in bridges:
        sh("ip", "link", "del", bridge, check=False)
    sh("nft", "delete", "table", "bridge", "cloudd_antispoof", check=False)
    for table, hooks in (("nat", ("PREROUTING", "OUTPUT", "POSTROUTING")), ("filter", ("INPUT", "FORWARD"))):
        for builtin in hooks:
            sh("iptables", "-t", table, "-D", builtin, "-j", f"cloudd-{builtin}", check=False)
        chains = [line.split()[1] for line in sh("iptables", "-t", table, "-S").stdout.splitlines()
                  if line.startswith("-N cloudd-")]
        for chain in chains:
            sh("iptables", "-t", table, "-F", chain, check=False)
        for chain in chains:
            sh("iptables", "-t", table, "-X", chain, check=False)


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    require_network_host()
    the_lab = Lab(tmp_path)
    yield the_lab
    the_lab.cleanup()


@contextlib.asynccontextmanager
async def network_cloud(tmp_path: Path,
                        manager: Literal["FlatManager", "FlatDHCPManager", "VLANManager"],
                        **network: Any) -> AsyncIterator[Cloud]:
    cfg = make_config(f"sqlite:///{tmp_path / 'cloud.db'}", tmp_path)
    cfg.network.network_manager = manager
    cfg.network.metadata_port = free_port()
    cfg.network.metadata_host = "127.0.0.1"
    for key, value in network.items():
        setattr(cfg.network, key, value)
    cloud = await start_cloud(cfg)
    try:
        yield cloud
    finally:
        await cloud.stop()
