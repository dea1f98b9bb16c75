"""``compute.host_health``: what only the agent can tell about its host, for `cloudd manage status`.

Read-only and cheap: one round trip to libvirtd (libvirt driver only), the dnsmasq of each
network this host serves (pid file + /proc, as the network manager itself checks before a
restart), the driver's guest count and whether the host's firewall rules were refused. The
controller asks it over the agent link (``GET /healthz/hosts``); nothing here changes the host.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cloudd.agent.hostcheck import instances_path_problem, missing_tools_problem
from cloudd.config import CloudConfig
from cloudd.metrics import allocated_blocks, asyncio_tasks, gc_objects
from cloudd.rpc import RpcContext, rpc_method
from cloudd.rpc.contracts.compute import DhcpServer, HostDomain, HostHealthReport, HostQuery
from cloudd.rpc.contracts.network import FLAT

if TYPE_CHECKING:
    from cloudd.agent.compute.drivers.base import ComputeDriver
    from cloudd.agent.network.manager import NetworkManager

LOG = logging.getLogger(__name__)
LIBVIRT_TIMEOUT = 5.0  # a hung libvirtd must not hang the report


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
                 network: NetworkManager, libvirt_uri: str = "",
                 cfg: CloudConfig | None = None) -> None:
        self.cfg = cfg
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
            host_problems=await self._host_problems(),
            unknown_domains=await self._unknown_domains(),
            host=self.host, driver=self.driver_name,
            libvirt_uri=self.libvirt_uri if reachable is not None else "",
            libvirt_reachable=reachable, libvirt_error=why, guests=guests,
            dhcp=await dhcp_servers(self.network), firewall_error=self.network.firewall_error,
            antispoof_error=self.network.antispoof_error,
            asyncio_tasks=asyncio_tasks(), gc_objects=gc_objects(),
            allocated_blocks=allocated_blocks())

    async def _host_problems(self) -> list[str]:
        """The start checks again (libvirt's answer is reported above on its own)."""
        if self.cfg is None:
            return []
        problems = [missing_tools_problem(self.cfg)]
        if self.driver_name == "libvirt":
            path = Path(self.cfg.compute.instances_path or "instances")
            problems.append(await asyncio.to_thread(instances_path_problem, path))
        return [problem for problem in problems if problem]

    async def _unknown_domains(self) -> list[HostDomain]:
        try:
            return await asyncio.wait_for(self.driver.unknown_domains(), LIBVIRT_TIMEOUT)
        except Exception as exc:  # libvirt down: said above
            LOG.warning("host health: listing the host's domains failed: %s", exc)
            return []

    @rpc_method
    async def host_health(self, ctx: RpcContext, args: HostQuery) -> HostHealthReport:
        return await self.report()
