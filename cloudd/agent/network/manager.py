"""The agent's network manager: applies the host's desired network state, reports DHCP leases.

Flat (the admin's bridge; nothing to plumb, addresses are injected), FlatDHCP (bridge on
``flat_interface`` + dnsmasq) and VLAN (per network: a segment link — 802.1Q on
``vlan_interface``, or VXLAN with ``segmentation = vxlan`` — under its own bridge ``br<vlan>``
with its own dnsmasq; without a ``vlan_interface`` the bridge alone is the segment, which is all
a single host needs). ``apply_state`` is idempotent and is called after every change and on
every (re)connection, so an agent restart re-binds floating IPs and restores rules unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

from cloudd.agent.network import antispoof, firewall, linux_net
from cloudd.agent.network.dnsmasq import Dnsmasq
from cloudd.agent.network.metadata_proxy import MetadataProxy
from cloudd.config import CloudConfig
from cloudd.rpc import RpcConnectionLost, RpcContext, RpcError, RpcPeer, rpc_method
from cloudd.rpc.contracts.network import (
    FLAT,
    VLAN,
    HostNetworkState,
    HostRef,
    InstanceNetworkRef,
    LeaseEvent,
    NetworkConductorClient,
    NetworkSpec,
    Vif,
)

LOG = logging.getLogger(__name__)
# How often the agent checks that the dnsmasq of each network it serves is alive: nova-network
# left a dead one dead until the next change of the network, and guests' renewals failed meanwhile.
DNSMASQ_CHECK_INTERVAL = 2.0


def networks_path(cfg: CloudConfig) -> Path:
    """dnsmasq's files and the record of what was applied (``<state_dir>/networks``)."""
    return Path(cfg.network.networks_path or Path(cfg.default.state_dir or ".") / "networks")


class NetworkManager:
    def __init__(self, host: str, networks_path: Path, flat_interface: str = "",
                 vlan_interface: str = "", segmentation: str = "vlan",
                 force_dhcp_release: bool = True, metadata_proxy_port: int = 9697,
                 metadata_secret: str = "") -> None:
        self.host = host
        self.path = networks_path
        self.flat_interface = flat_interface
        self.vlan_interface = vlan_interface
        self.segmentation = segmentation
        self.force_dhcp_release = force_dhcp_release
        self.event_socket = networks_path / "dhcp-events.sock"
        self.dnsmasq = Dnsmasq(networks_path, self.event_socket)
        self.peer: RpcPeer | None = None  # the controller link, swapped on reconnection
        self.state: HostNetworkState | None = None
        self.firewall_error = ""  # why the last rule set was refused (guests cut off), if it was
        self.antispoof_error = ""  # why the ports' anti-spoofing rules were not loaded (ports down)
        self._lock = asyncio.Lock()
        self._transport: asyncio.DatagramTransport | None = None
        self.metadata_proxy_port = metadata_proxy_port
        self.metadata_proxy = MetadataProxy(host, lambda: self.state, metadata_secret)
        self.protected_ports: set[str] = set()  # the guest ports whose anti-spoofing rules are in
        self.dnsmasq_check_interval = DNSMASQ_CHECK_INTERVAL
        # The bridges whose dnsmasq an apply started (or HUPed): the ones the watch keeps alive.
        self._dhcp_bridges: set[str] = set()
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, host: str, cfg: CloudConfig, path: Path) -> NetworkManager:
        net = cfg.network
        return cls(host, path, flat_interface=net.flat_interface, vlan_interface=net.vlan_interface,
                   segmentation=net.segmentation, force_dhcp_release=net.force_dhcp_release,
                   metadata_proxy_port=net.metadata_proxy_port,
                   metadata_secret=net.metadata_proxy_shared_secret)

    # ----- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for dnsmasq's lease events (the dhcpbridge script's datagrams)."""
        await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        self.event_socket.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.event_socket))
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _EventProtocol(self), sock=sock)
        self._watch = asyncio.create_task(self._watch_dnsmasq(), name="dnsmasq watch")

    async def stop(self) -> None:
        """Nothing is torn down (Nova's way): guests keep their network while the agent is away."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await self.metadata_proxy.stop()

    async def init_host(self, peer: RpcPeer) -> None:
        """After each (re)connection: fetch this host's state from the controller and apply it."""
        self.peer = peer
        state = await NetworkConductorClient(peer).get_host_state(HostRef(host=self.host))
        await self.apply(state)

    async def init_host_safely(self, peer: RpcPeer) -> None:
        """``init_host`` that never breaks the link: a controller without networking, or a
        failed apply, is logged and retried at the next change or reconnection."""
        try:
            await self.init_host(peer)
        except RpcError as exc:
            LOG.warning("no network state from the controller: %s", exc)
        except Exception:
            LOG.exception("applying this host's network state failed")

    async def _watch_dnsmasq(self) -> None:
        while True:
            await asyncio.sleep(self.dnsmasq_check_interval)
            try:
                await self.respawn_dead_dnsmasq()
            except Exception:  # e.g. dnsmasq refuses to start: said here, tried again next time
                LOG.exception("cannot restart a dead dnsmasq")

    async def respawn_dead_dnsmasq(self) -> None:
        """Start again the dnsmasq of each network this host serves whose process died (killed,
        crashed): from the hosts file the last apply wrote and the lease file it kept, so every
        guest keeps its address."""
        async with self._lock:
            state = self.state
            if state is None or state.manager == FLAT:
                return
            for net in state.networks:
                if net.bridge not in self._dhcp_bridges:
                    continue
                if await asyncio.to_thread(self.dnsmasq.running_pid, net.bridge) is None:
                    LOG.warning("dnsmasq for network %s (%s) is not running: starting it again",
                                net.label, net.bridge)
                    await self.dnsmasq.update(net, state.dhcp_lease_time, state.dhcp_domain)

    # ----- RPC from the controller --------------------------------------------------------

    @rpc_method
    async def apply_state(self, ctx: RpcContext, args: HostNetworkState) -> None:
        await self.apply(args)

    async def apply(self, state: HostNetworkState) -> None:
        async with self._lock:
            previous, self.state = self._load_applied(), state
            if not state.networks and not previous:
                return  # no networking configured: leave the host alone
            refused: firewall.FirewallError | None = None
            try:  # first: it needs no bridge, and the ports' protection must not wait on the rest
                await antispoof.apply(state)
                self.protected_ports = {port.device for port in state.ports}
                self.antispoof_error = ""
            except antispoof.AntispoofError as exc:
                self.protected_ports = set()
                self.antispoof_error = str(exc)
                raise
            if state.manager != FLAT:
                if not state.public_interface:  # NAT out of, and floating IPs on, the uplink
                    state.public_interface = await linux_net.uplink() or ""
                await linux_net.enable_forwarding()
                for net in state.networks:
                    await self._setup_network(net, state)
                await self._bind_floating(state, previous)
                proxy_port = await self.metadata_proxy.ensure_started(self.metadata_proxy_port)
                if proxy_port is not None:  # else the redirect finds nothing: no metadata, no leak
                    state.metadata_proxy_port = proxy_port
                refused = await self._apply_firewall(state)
            if self.force_dhcp_release:
                await self._release_gone(state, previous)
            await asyncio.to_thread(self._save_applied, state)
            if refused is not None:  # the rest is in place; the controller's log says it too
                raise refused

    async def _apply_firewall(self, state: HostNetworkState) -> firewall.FirewallError | None:
        """The rules, or the guests cut off; ``firewall_error`` is what host_health reports."""
        try:
            await firewall.apply(state)
        except firewall.FirewallError as exc:
            self.firewall_error = exc.describe()
            return exc
        self.firewall_error = ""
        return None

    async def _setup_network(self, net: NetworkSpec, state: HostNetworkState) -> None:
        enslave = self.flat_interface or net.bridge_interface or None
        if state.manager == VLAN and net.vlan is not None:
            enslave = await self._segment_link(net)
        address = net.gateway if net.gateway_host else None
        await linux_net.ensure_bridge(net.bridge, enslave, address, net.prefixlen)
        if net.gateway_host:
            await self.dnsmasq.update(net, state.dhcp_lease_time, state.dhcp_domain)
            self._dhcp_bridges.add(net.bridge)

    async def _segment_link(self, net: NetworkSpec) -> str | None:
        interface = net.bridge_interface or self.vlan_interface
        if not interface or net.vlan is None:
            return None  # one host: the bridge is the whole segment
        kind = "vxlan" if self.segmentation == "vxlan" else "vlan"
        name = f"{kind}{net.vlan}"
        try:
            await linux_net.ensure_segment(kind, name, net.vlan, interface)
        except linux_net.SegmentUnsupported as exc:
            LOG.error("network %s: %s; its bridge serves this host only", net.label, exc)
            return None
        return name

    async def _bind_floating(self, state: HostNetworkState, previous: dict[str, Any]) -> None:
        wanted = {f.address: f.interface or state.public_interface for f in state.floating_ips}
        for address, dev in previous.get("floating", {}).items():
            if wanted.get(address) != dev and dev:
                await linux_net.set_address(dev, address, 32, present=False)
        for address, dev in wanted.items():
            if dev:
                await linux_net.set_address(dev, address, 32)

    async def _release_gone(self, state: HostNetworkState, previous: dict[str, Any]) -> None:
        """Leases of guests that are gone end now, and dnsmasq reports them released."""
        now = {(n.bridge, h.ip, h.mac) for n in state.networks for h in n.hosts}
        for bridge, ip, mac in previous.get("hosts", []):
            if (bridge, ip, mac) not in now:
                await self.dnsmasq.release(bridge, ip, mac)

    def _load_applied(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.path / "applied.json").read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _save_applied(self, state: HostNetworkState) -> None:
        data = {
            "floating": {f.address: f.interface or state.public_interface for f in state.floating_ips},
            "hosts": [[n.bridge, h.ip, h.mac] for n in state.networks for h in n.hosts],
        }
        tmp = self.path / "applied.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path / "applied.json")

    # ----- what the compute manager calls -------------------------------------------------

    def check_ports_protected(self, network_info: list[Vif]) -> None:
        """Before a guest is plugged in: its ports' anti-spoofing rules must be loaded, or the
        build fails here (and goes to another host) rather than run a guest unprotected."""
        missing = [vif.devname for vif in network_info if vif.devname not in self.protected_ports]
        if missing:
            raise PortsUnprotected(f"no anti-spoofing rules loaded for {', '.join(missing)}")

    async def deallocate_for_instance(self, uuid: str) -> None:
        """A guest was destroyed here: the controller frees its addresses and re-applies."""
        if self.peer is None:
            return  # the controller's sweep frees them later
        await NetworkConductorClient(self.peer).deallocate_for_instance_rpc(
            InstanceNetworkRef(uuid=uuid, host=self.host))

    async def report_lease(self, event: LeaseEvent) -> None:
        if self.peer is None:
            return
        try:
            await NetworkConductorClient(self.peer).dhcp_event(event)
        except (RpcConnectionLost, RpcError) as exc:
            LOG.warning("lease event %s %s %s not reported: %s", event.action, event.mac,
                        event.ip, exc)


class PortsUnprotected(Exception):
    """A guest's port has no anti-spoofing rules on this host (they failed to load)."""


class _EventProtocol(asyncio.DatagramProtocol):
    def __init__(self, manager: NetworkManager) -> None:
        self.manager = manager
        self._tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            event = LeaseEvent.model_validate_json(data)
        except ValueError:
            LOG.warning("bad DHCP event datagram: %r", data[:200])
            return
        LOG.info("DHCP %s %s %s", event.action, event.mac, event.ip)
        task = asyncio.get_running_loop().create_task(self.manager.report_lease(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
