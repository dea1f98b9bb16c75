"""A real QEMU guest on a FlatDHCP network: libvirt plugs it in as the tap the host's
anti-spoofing rules name, with the VIF's MAC; it gets its lease through those rules and its
hostname from the metadata service through the host's signing proxy (the guest's init prints
both on the console). A rebuild keeps the NIC; a rescue boots the rescue image with the NIC and
the guest's own disk attached after it, and unrescue boots the guest's own disk again."""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path

import pytest
from harness.libvirt import LibvirtCloud, flat_dhcp_network, libvirt_cloud
from harness.libvirt_host import libvirt_host, virsh  # noqa: F401 - fixtures
from harness.netlab import require_network_host, teardown_host

from cloudd import db as cloudd_db
from cloudd.agent.network import antispoof
from cloudd.network import ipam
from cloudd.rpc.contracts.network import device_name

pytestmark = pytest.mark.slow


async def rebuild_rescue_unrescue(cloud: LibvirtCloud, server: str, network_line: str) -> None:
    """Each boot prints the network line only with its NIC, lease and metadata working."""
    await cloud.action(server, {"rebuild": {"imageRef": cloud.images["cloudd-guest"]}})
    await cloud.wait_status(server, "ACTIVE")
    output = await cloud.wait_ready(server, 2)
    assert output.count(network_line) == 2, output[-1500:]  # the rebuilt guest has its NIC

    await cloud.action(server, {"rescue": None}, expect=200)
    await cloud.wait_status(server, "RESCUE")
    disks = (await asyncio.to_thread(virsh, "domblklist", server)).split()
    assert [d for d in disks if d.startswith("vd")] == ["vda", "vdb"], disks
    assert any(d.endswith(f"{server}/rescue/disk") for d in disks), disks  # vda: rescue's
    assert any(d.endswith(f"{server}/disk") for d in disks), disks  # vdb: its own disk
    output = await cloud.wait_ready(server, 3)
    assert output.count(network_line) == 3, output[-1500:]

    await cloud.action(server, {"unrescue": None})
    await cloud.wait_status(server, "ACTIVE")
    disks = (await asyncio.to_thread(virsh, "domblklist", server)).split()
    assert [d for d in disks if d.startswith("vd")] == ["vda"], disks
    assert not await asyncio.to_thread((cloud.instances / server / "rescue").exists)
    output = await cloud.wait_ready(server, 4)
    assert output.count(network_line) == 4, output[-1500:]


async def test_real_guest_gets_lease_and_metadata_through_antispoofing(libvirt_host: Path) -> None:
    require_network_host()
    bridge = f"brl{random.randint(0, 0xFFFF):04x}"
    network = flat_dhcp_network(bridge)
    async with libvirt_cloud(libvirt_host, network=network) as cloud:
        try:
            db = await cloudd_db.connect(f"sqlite:///{cloud.state}/cloudd.db")
            try:
                await ipam.create_networks(db, "FlatDHCPManager", "private", "10.231.13.0/24",
                                           bridge=bridge)
                server = await cloud.create("e2e-net", cloud.images["cloudd-guest"], networks="auto")
                await cloud.wait_status(server, "ACTIVE")
                nic = await db.fetchrow(
                    "SELECT v.uuid, v.address AS mac, f.address AS ip FROM virtual_interfaces v"
                    " JOIN fixed_ips f ON f.virtual_interface_id = v.id WHERE v.instance_uuid = $1",
                    server)
            finally:
                await db.close()
            assert nic is not None
            device = device_name(nic["uuid"])
            xml = await asyncio.to_thread(virsh, "dumpxml", server)
            assert f"<target dev='{device}'/>" in xml and f"<mac address='{nic['mac']}'/>" in xml
            table = await asyncio.to_thread(
                subprocess.run, ["nft", "list", "table", "bridge", antispoof.TABLE],
                capture_output=True, text=True, check=True)
            assert f"ether saddr != {nic['mac']} drop" in table.stdout

            output = await cloud.wait_ready(server, 1)
            assert f"hostname=e2e-net ip={nic['ip']}/24" in output, output[-1500:]
            # Diagnostics read the guest's tap: its DHCP and metadata traffic went both ways.
            url = f"/compute/v2.1/servers/{server}/diagnostics"
            code, diagnostics, _ = await cloud.call("GET", url, version="2.48")
            assert code == 200 and diagnostics["num_nics"] == 1, diagnostics
            traffic = diagnostics["nic_details"][0]
            assert traffic["mac_address"] == nic["mac"]
            assert traffic["rx_octets"] > 0 and traffic["tx_octets"] > 0, traffic
            code, legacy, _ = await cloud.call("GET", url, version="2.1")
            assert code == 200 and legacy[f"{device}_tx"] >= traffic["tx_octets"], legacy
            await rebuild_rescue_unrescue(cloud, server, f"hostname=e2e-net ip={nic['ip']}/24")
            await cloud.delete(server)
        finally:
            await asyncio.to_thread(teardown_host, cloud.agent_state, [bridge])
