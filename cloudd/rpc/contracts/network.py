"""The network RPC contract, both directions over the agent websocket.

Controller -> agent (``network.*``, served by the agent's NetworkManager): ``apply_state`` hands
the host its whole desired network state, which the agent applies idempotently (bridges,
gateway addresses, dnsmasq hosts, NAT, floating addresses, security-group chains).
Agent -> controller (``network_conductor.*``, served next to ``conductor.*``): DHCP lease
events, the host's state after a (re)connection, and the release of a deleted guest's addresses.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from cloudd.rpc.link import RpcLink
from cloudd.vocab.secgroup_rules import Cidr, IPv4Text

# FirewallRule is part of this contract; it is defined with the APIs' rule model.
from cloudd.vocab.secgroup_rules import FirewallRule as FirewallRule

PREFIX = "network."
CONDUCTOR_PREFIX = "network_conductor."
IFNAME = r"^[A-Za-z0-9_.-]{1,15}$"  # a Linux interface name (IFNAMSIZ), as iptables takes it
# The network managers (``HostNetworkState.manager``), named as Nova's nova-network classes.
FLAT, FLAT_DHCP, VLAN = "FlatManager", "FlatDHCPManager", "VLANManager"
PORT_PREFIX = "tap"


def device_name(vif_uuid: str) -> str:
    """Nova's tap name for a VIF: ``tap`` + the first 11 characters of its id (IFNAMSIZ is 15).
    The controller names a guest's port with it (``GuestPort.device``), the agent's driver
    creates the tap and the anti-spoofing rules match it."""
    return PORT_PREFIX + vif_uuid[:11]


class Vif(BaseModel):
    """One NIC of a server as the controller allocated it (Nova's VIF, flattened): what the
    agent's driver plugs (``bridge``, ``mac``, the tap ``devname``) and what a guest's network
    is (its fixed IP, subnet, gateway and DNS, the floating IPs on that fixed IP). Built by
    ``cloudd.network.ipam.network_info``; one per entry of ``BuildInstance.network_info``."""

    vif_id: str  # the virtual interface's uuid
    mac: str
    ip: str | None  # None: the interface holds no fixed IP
    network_id: str  # the network's uuid
    label: str  # the network's label
    bridge: str
    cidr: str
    gateway: str
    netmask: str
    prefixlen: int
    devname: str  # the tap the host's anti-spoofing rules name (``device_name(vif_id)``)
    vlan: int | None = None
    dns: list[str] = Field(default_factory=list)
    floating_ips: list[str] = Field(default_factory=list)


class DhcpHost(BaseModel):
    mac: str
    ip: str
    hostname: str
    # Who the guest at ``ip`` is, for the host's metadata proxy (it signs this instance id).
    instance_uuid: str | None = None
    project_id: str | None = None


class NetworkSpec(BaseModel):
    id: int
    uuid: str
    label: str
    bridge: str = Field(pattern=IFNAME)  # in the firewall's rules, as are cidr and gateway
    bridge_interface: str | None = None
    vlan: int | None = None
    cidr: Cidr
    gateway: IPv4Text
    netmask: str
    prefixlen: int
    dhcp_start: str
    dns: list[str] = Field(default_factory=list)
    gateway_host: bool = True  # this host carries the gateway address and the dnsmasq
    hosts: list[DhcpHost] = Field(default_factory=list)


class FloatingSpec(BaseModel):
    address: IPv4Text  # in the NAT rules, as fixed_address
    fixed_address: IPv4Text
    interface: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{0,15}$")


class InstanceFirewall(BaseModel):
    """Ingress allowed to one guest address (group sources expanded to /32 CIDRs). Every field
    is written into iptables-restore input, so each is parsed strictly: no text but what its
    type allows can get there."""

    uuid: str = Field(pattern=r"^[0-9a-fA-F-]{1,64}$")
    ip: IPv4Text
    mac: str = Field(pattern=r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
    bridge: str = Field(pattern=IFNAME)
    rules: list[FirewallRule] = Field(default_factory=list)


# Typed before they reach nft: a Linux interface name (IFNAMSIZ 15, no wildcard or quote) and a
# lower-case unicast-style MAC as the database stores them.
InterfaceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")]
MacAddress = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]


class GuestPort(BaseModel):
    """One guest interface on this host's bridge, and the only addresses it may send from."""

    device: InterfaceName  # the tap (or, in the tests, the veth) plugged into ``bridge``
    bridge: InterfaceName
    mac: MacAddress
    ips: list[IPv4Address] = Field(min_length=1)


class HostNetworkState(BaseModel):
    manager: str
    networks: list[NetworkSpec] = Field(default_factory=list)
    floating_ips: list[FloatingSpec] = Field(default_factory=list)
    firewalls: list[InstanceFirewall] = Field(default_factory=list)
    metadata_host: IPv4Text = "127.0.0.1"  # these three are in the NAT rules too
    metadata_port: int = Field(8775, ge=0, le=65535)
    public_interface: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,15}$")
    # The port guests' 169.254.169.254:80 is redirected to: the agent's own metadata proxy
    # (the agent sets it to where its proxy listens), and this host's key the proxy signs with.
    metadata_proxy_port: int = Field(9697, ge=1, le=65535)
    metadata_secret: str = Field("", repr=False)
    ports: list[GuestPort] = Field(default_factory=list)
    dhcp_lease_time: int = 120
    dhcp_domain: str = "novalocal"


class HostRef(BaseModel):
    host: str


class LeaseEvent(BaseModel):
    """dnsmasq's ``--dhcp-script`` call: ``add``, ``old`` or ``del`` of ``mac`` -> ``ip``."""

    action: str
    mac: str
    ip: str
    hostname: str | None = None


class InstanceNetworkRef(BaseModel):
    uuid: str
    host: str | None = None


class NetworkClient:
    """The controller's typed handle on one host's network agent: one method per ``network.*``
    method the agent serves (``cloudd.agent.network.manager.NetworkManager``)."""

    def __init__(self, link: RpcLink) -> None:
        self.link = link

    async def apply_state(self, args: HostNetworkState) -> None:
        await self.link.call(PREFIX + "apply_state", args)


class NetworkConductorClient:
    """The agent's typed handle on the controller's network service: one method per
    ``network_conductor.*`` method it serves (``cloudd.network.service.NetworkService``)."""

    def __init__(self, link: RpcLink) -> None:
        self.link = link

    async def get_host_state(self, args: HostRef) -> HostNetworkState:
        return await self.link.call(CONDUCTOR_PREFIX + "get_host_state", args, HostNetworkState)

    async def dhcp_event(self, args: LeaseEvent) -> None:
        await self.link.call(CONDUCTOR_PREFIX + "dhcp_event", args)

    async def deallocate_for_instance_rpc(self, args: InstanceNetworkRef) -> None:
        await self.link.call(CONDUCTOR_PREFIX + "deallocate_for_instance_rpc", args)
