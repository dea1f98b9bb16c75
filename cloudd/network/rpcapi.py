"""The network RPC contract, both directions over the agent websocket.

Controller -> agent (``network.*``, served by the agent's NetworkManager): ``apply_state`` hands
the host its whole desired network state, which the agent applies idempotently (bridges,
gateway addresses, dnsmasq hosts, NAT, floating addresses, security-group chains).
Agent -> controller (``network_conductor.*``, served next to ``conductor.*``): DHCP lease
events, the host's state after a (re)connection, and the release of a deleted guest's addresses.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from cloudd.network.rules import Cidr, IPv4Text

# FirewallRule is part of this contract; it is defined with the APIs' rule model.
from cloudd.network.rules import FirewallRule as FirewallRule

PREFIX = "network."
CONDUCTOR_PREFIX = "network_conductor."
IFNAME = r"^[A-Za-z0-9_.-]{1,15}$"  # a Linux interface name (IFNAMSIZ), as iptables takes it


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


class NetworkInfo(BaseModel):
    network_info: list[dict[str, Any]] = Field(default_factory=list)
