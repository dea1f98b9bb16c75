"""The first server, as a newcomer boots it: no network named, on the network bootstrap made.
A real QEMU guest gets an address the API shows, and the host reaches it on that address and
through a floating IP from the default pool, with the default security group untouched (it
filters what the host forwards to a guest, not what the host itself sends)."""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import ipaddress
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness.config import free_port
from harness.libvirt import LibvirtCloud, libvirt_cloud
from harness.libvirt_host import libvirt_host, virsh  # noqa: F401 - fixtures
from harness.netlab import teardown_host

from cloudd import db as cloudd_db
from cloudd.agent.network import linux_net
from cloudd.config.models import NetworkSection
from cloudd.network import defaults

pytestmark = pytest.mark.slow


async def host_pings(address: str, seconds: float = 1) -> bool:
    """One ping from the host itself (root namespace) within ``seconds``."""
    result = await asyncio.to_thread(
        subprocess.run, ["busybox", "ping", "-c", "1", "-W", str(int(seconds)), address],
        capture_output=True, text=True, timeout=seconds + 10)
    return result.returncode == 0


async def pings_within(address: str, seconds: float) -> bool:
    for _ in range(int(seconds)):
        if await host_pings(address):
            return True
    return False


async def neutron(cloud: LibvirtCloud, method: str, path: str, expect: int,
                  **body: Any) -> dict[str, Any]:
    code, reply, _ = await cloud.call(method, "/network/v2.0" + path, json=body or None)
    assert code == expect, (method, path, code, reply)
    return dict(reply or {})


async def test_server_without_network_is_reachable_from_the_host(libvirt_host: Path) -> None:
    octet = random.randint(160, 199)
    bridge = f"brn{random.randint(0, 0xFFFF):04x}"
    network = {"flat_network_bridge": bridge, "fixed_range": f"10.{octet}.0.0/16",
               "floating_range": f"10.{octet + 40}.9.0/28",
               "metadata_host": "127.0.0.1", "metadata_port": str(free_port())}
    uplink = await linux_net.uplink()
    floating_address = ""
    async with libvirt_cloud(libvirt_host, network=network) as cloud:
        try:
            db = await cloudd_db.connect(f"sqlite:///{cloud.state}/cloudd.db")
            try:  # what `cloudd manage bootstrap` does after the admin project
                admin = str(await db.fetchval("SELECT id FROM projects WHERE name = 'admin'"))
                await defaults.ensure_default_network(
                    db, NetworkSection.model_validate(network), admin)
            finally:
                await db.close()

            server = await cloud.create("first", cloud.images["cloudd-guest"], networks="auto")
            row = await cloud.wait_status(server, "ACTIVE")
            (nic,) = row["addresses"]["private"]
            fixed = nic["addr"]
            assert ipaddress.ip_address(fixed) in ipaddress.ip_network(f"10.{octet}.0.0/24")
            output = await cloud.wait_ready(server, 1)
            assert f"ip={fixed}/24" in output, output[-1500:]

            # The host is the guests' hypervisor and gateway: its own traffic is not filtered
            # (security groups filter what is forwarded to a guest, from anywhere else).
            assert await pings_within(fixed, 15), f"the host cannot ping {fixed}"

            floating_address = await associate_floating_ip(cloud, server)
            assert ipaddress.ip_address(floating_address) in ipaddress.ip_network(
                network["floating_range"])
            addresses = (await cloud.server(server))["addresses"]["private"]
            assert {a["addr"]: a["OS-EXT-IPS:type"] for a in addresses} == {
                fixed: "fixed", floating_address: "floating"}
            assert await pings_within(floating_address, 15), "the floating IP does not reach it"

            await cloud.delete(server)
            assert not await pings_within(floating_address, 2), "still reached after delete"
        finally:
            if floating_address and uplink:
                await asyncio.to_thread(subprocess.run, ["ip", "addr", "del",
                                        f"{floating_address}/32", "dev", uplink],
                                        capture_output=True)
            await asyncio.to_thread(teardown_host, cloud.agent_state, [bridge])


async def associate_floating_ip(cloud: LibvirtCloud, server: str) -> str:
    """`openstack floating ip create nova` and `server add floating ip`, as OSC does them."""
    pools = (await neutron(cloud, "GET", "/networks?router:external=true", 200))["networks"]
    pool = next(n for n in pools if n["name"] == "nova")
    fip = (await neutron(cloud, "POST", "/floatingips", 201,
                         floatingip={"floating_network_id": pool["id"]}))["floatingip"]
    (port,) = (await neutron(cloud, "GET", f"/ports?device_id={server}", 200))["ports"]
    await neutron(cloud, "PUT", f"/floatingips/{fip['id']}", 200,
                  floatingip={"port_id": port["id"]})
    return str(fip["floating_ip_address"])
