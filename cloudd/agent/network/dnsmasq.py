"""One dnsmasq per network bridge serving static leases (Nova's ``linux_net.restart_dhcp``).

The hosts file lists ``MAC,hostname,IP``; a running dnsmasq for the bridge (its pid file names a
live process whose command line mentions the bridge's hosts file) re-reads it on SIGHUP,
otherwise one is started. dnsmasq keeps no state we rely on: its lease file only spares guests
a renumbering when the agent restarts, and lease events go through ``dhcpbridge.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from cloudd.rpc.contracts.network import NetworkSpec

LOG = logging.getLogger(__name__)
BRIDGE_SCRIPT = Path(__file__).with_name("dhcpbridge.py")


class Dnsmasq:
    def __init__(self, networks_path: Path, event_socket: Path) -> None:
        self.path = networks_path
        self.event_socket = event_socket

    def files(self, bridge: str) -> dict[str, Path]:
        return {kind: self.path / f"nova-{bridge}.{kind}" for kind in ("conf", "pid", "leases", "log")}

    def _running_pid(self, bridge: str) -> int | None:
        files = self.files(bridge)
        try:
            pid = int(files["pid"].read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(files["conf"]).encode() in cmdline else None

    def running_pid(self, bridge: str) -> int | None:
        """The pid of the bridge's live dnsmasq, or None (blocking: /proc reads)."""
        return self._running_pid(bridge)

    def _write_hosts(self, net: NetworkSpec, domain: str) -> None:
        lines = [f"{h.mac},{h.hostname}.{domain},{h.ip}\n" if domain else f"{h.mac},{h.hostname},{h.ip}\n"
                 for h in net.hosts]
        conf = self.files(net.bridge)["conf"]
        tmp = conf.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        tmp.replace(conf)

    def _write_script(self) -> Path:
        script = self.path / "cloudd-dhcpbridge"
        text = (f"#!/bin/sh\nexec {sys.executable} -I {BRIDGE_SCRIPT} {self.event_socket} \"$@\"\n")
        if not script.exists() or script.read_text() != text:
            script.write_text(text)
            script.chmod(0o755)
        return script

    async def update(self, net: NetworkSpec, lease_time: int, domain: str) -> None:
        """Write the hosts file, then HUP the bridge's dnsmasq or start it."""
        await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._write_hosts, net, domain)
        pid = await asyncio.to_thread(self._running_pid, net.bridge)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
            return
        script = await asyncio.to_thread(self._write_script)
        await self._start(net, lease_time, domain, script)

    async def _start(self, net: NetworkSpec, lease_time: int, domain: str, script: Path) -> None:
        files = self.files(net.bridge)
        argv = [
            # As root, like Nova's: the state directory may be closed to "nobody", and the
            # hosts file is re-read on every SIGHUP.
            "dnsmasq", "--user=root", "--strict-order", "--bind-interfaces", "--conf-file=/dev/null",
            f"--pid-file={files['pid']}", f"--interface={net.bridge}", "--except-interface=lo",
            f"--listen-address={net.gateway}", "--port=0",
            f"--dhcp-range=set:{net.label},{net.dhcp_start},static,{net.netmask},{lease_time}s",
            f"--dhcp-lease-max={2 ** (32 - net.prefixlen)}", f"--dhcp-hostsfile={files['conf']}",
            f"--dhcp-leasefile={files['leases']}", f"--dhcp-script={script}",
            f"--log-facility={files['log']}", "--log-dhcp", "--dhcp-authoritative",
        ]
        if domain:
            argv.append(f"--domain={domain}")
        if net.dns:
            argv.append("--dhcp-option=6," + ",".join(net.dns))
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()  # dnsmasq daemonises: the parent exits at once
        if proc.returncode != 0:
            raise RuntimeError(f"dnsmasq for {net.bridge} failed: {err.decode().strip()}")
        LOG.info("dnsmasq started for %s (%s)", net.bridge, net.cidr)

    async def release(self, bridge: str, ip: str, mac: str) -> None:
        """``dhcp_release``: dnsmasq drops the lease now (and runs the script's ``del``)."""
        proc = await asyncio.create_subprocess_exec(
            "dhcp_release", bridge, ip, mac,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            LOG.warning("dhcp_release %s %s %s failed: %s", bridge, ip, mac, err.decode().strip())

    async def stop(self, bridge: str) -> None:
        pid = await asyncio.to_thread(self._running_pid, bridge)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
