"""``compute.host_health``: what only the agent can tell about its host, for `cloudd manage status`.

Read-only and cheap: one round trip to libvirtd (libvirt driver only), the dnsmasq of each
network this host serves (pid file + /proc, as the network manager itself checks before a
restart), the driver's guest count and whether the host's firewall rules were refused. The
controller asks it over the agent link (``GET /healthz/hosts``); nothing here changes the host.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from cloudd.compute.rpcapi import HostQuery
from cloudd.network.ipam import FLAT
from cloudd.rpc import RpcContext, rpc_method

if TYPE_CHECKING:
    from cloudd.compute.drivers.base import ComputeDriver
    from cloudd.network.manager import NetworkManager

LOG = logging.getLogger(__name__)
METHOD = "compute.host_health"
LIBVIRT_TIMEOUT = 5.0  # a hung libvirtd must not hang the report


class DhcpServer(BaseModel):
    """The dnsmasq of one network on this host."""

    network: str  # the network's label
    bridge: str
    pid: int | None  # None: not running
    log: str = ""  # dnsmasq's log file, where the reason is when it died


class HostHealthReport(BaseModel):
    host: str
    driver: str
    libvirt_uri: str = ""
    libvirt_reachable: bool | None = None  # None: not a libvirt host
    libvirt_error: str = ""
    guests: int | None = None  # None: the driver could not list them
    dhcp: list[DhcpServer] = Field(default_factory=list)
    # Why the host's last security-group rule set was refused (its guests are cut off), or "".
    firewall_error: str = ""
    antispoof_error: str = ""


async def check_libvirt(driver: ComputeDriver) -> tuple[bool | None, str]:
    """(reachable, why not); (None, "") for drivers that are not libvirt."""
    check = getattr(driver, "check_connection", None)
    if check is None:
        return None, ""
    try:
        await asyncio.wait_for(check(), LIBVIRT_TIMEOUT)
    except TimeoutError:
        return False, f"no answer within {LIBVIRT_TIMEOUT:g}s"
    except Exception as exc:  # a libvirt error of any kind is the answer, not a crash
        return False, " ".join(str(exc).split()) or type(exc).__name__
    return True, ""


async def dhcp_servers(network: NetworkManager) -> list[DhcpServer]:
    """Each network whose dnsmasq this host runs (FlatDHCP/VLAN, gateway here), with its pid."""
    state = network.state
    if state is None or state.manager == FLAT:
        return []
    found = []
    for net in state.networks:
        if not net.gateway_host:
            continue
        pid = await asyncio.to_thread(network.dnsmasq.running_pid, net.bridge)
        found.append(DhcpServer(network=net.label, bridge=net.bridge, pid=pid,
                                log=str(network.dnsmasq.files(net.bridge)["log"])))
    return found


class HostHealth:
    """Registered on the agent's dispatcher with the compute prefix."""

    def __init__(self, host: str, driver_name: str, driver: ComputeDriver,
                 network: NetworkManager, libvirt_uri: str = "") -> None:
        self.host = host
        self.driver_name = driver_name
        self.driver = driver
        self.network = network
        self.libvirt_uri = libvirt_uri

    async def report(self) -> HostHealthReport:
        reachable, why = await check_libvirt(self.driver)
        try:
            guests: int | None = len(await self.driver.list_instances())
        except Exception as exc:  # e.g. libvirt down: the report says so instead of failing
            LOG.warning("host health: listing guests failed: %s", exc)
            guests = None
        return HostHealthReport(
            host=self.host, driver=self.driver_name,
            libvirt_uri=self.libvirt_uri if reachable is not None else "",
            libvirt_reachable=reachable, libvirt_error=why, guests=guests,
            dhcp=await dhcp_servers(self.network), firewall_error=self.network.firewall_error,
            antispoof_error=self.network.antispoof_error)

    @rpc_method
    async def host_health(self, ctx: RpcContext, args: HostQuery) -> HostHealthReport:
        return await self.report()
