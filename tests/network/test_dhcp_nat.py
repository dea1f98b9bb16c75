"""FlatDHCP and VLAN networking end to end on real bridges, dnsmasq, iptables and namespaces."""

from __future__ import annotations

import functools
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness.cloud import Cloud, wait_for
from harness.netlab import Lab, ash, network_cloud, ping, serve_tcp, tcp_ok, teardown_host

from cloudd.agent.service import build_agent
from cloudd.network import ipam
from cloudd.network.service import NetworkService
from cloudd.rpc.contracts.network import device_name
from cloudd.vocab.secgroup_rules import parse_rule

pytestmark = pytest.mark.slow


async def vif(cloud: Cloud, uuid: str) -> dict[str, Any]:
    row = await cloud.db.fetchrow(
        "SELECT v.uuid AS vif_uuid, v.address AS mac, f.address AS ip, f.leased, n.bridge"
        " FROM virtual_interfaces v"
        " JOIN fixed_ips f ON f.virtual_interface_id = v.id JOIN networks n ON n.id = v.network_id"
        " WHERE v.instance_uuid = $1", uuid)
    assert row is not None, "the instance got no fixed IP"
    return row


async def leased(cloud: Cloud, address: str) -> int:
    return int(await cloud.db.fetchval("SELECT leased FROM fixed_ips WHERE address = $1", address))


async def test_flatdhcp_lease_reaches_db_and_delete_releases(lab: Lab, tmp_path: Path) -> None:
    bridge = f"brf{lab.tag}"
    async with network_cloud(tmp_path, "FlatDHCPManager", flat_network_bridge=bridge) as cloud:
        try:
            await ipam.create_networks(cloud.db, "FlatDHCPManager", "private", "10.231.5.0/24",
                                       bridge=bridge)
            rows, _ = await cloud.boot(name="web")
            uuid = rows[0]["uuid"]
            await cloud.wait_state(uuid, "active")
            nic = await vif(cloud, uuid)
            assert nic["mac"].startswith("fa:16:3e:") and nic["bridge"] == bridge

            got = await lab.guest("a", bridge, nic["mac"], device_name(nic["vif_uuid"]))
            assert got == nic["ip"]
            await wait_for(functools.partial(_is_leased, cloud, got), 10, "the lease to reach the DB")

            await cloud.api.delete(await cloud.instance(uuid), "req-del")

            await wait_for(functools.partial(_freed, cloud, got), 15,
                           "dnsmasq's release to free the address")
        finally:
            teardown_host(Path(cloud.cfg.default.state_dir), [bridge])


async def _is_leased(cloud: Cloud, address: str) -> bool:
    return await leased(cloud, address) == 1


async def _freed(cloud: Cloud, address: str) -> bool:
    row = await cloud.db.fetchrow("SELECT instance_uuid, leased FROM fixed_ips WHERE address = $1",
                                  address)
    return row is not None and row["instance_uuid"] is None and row["leased"] == 0


async def test_vlan_isolation_floating_ip_security_groups_metadata_restart(
        lab: Lab, tmp_path: Path) -> None:
    vlan_start = random.randint(3000, 3900)
    bridges = [f"br{vlan_start}", f"br{vlan_start + 1}"]
    public = f"cdp{lab.tag}"
    servers: list[subprocess.Popen[bytes]] = []
    async with network_cloud(tmp_path, "VLANManager", public_interface=public) as cloud:
        try:
            outside, _ = await lab.outside("198.51.100.1", "198.51.100.2")
            await ipam.create_networks(cloud.db, "VLANManager", "vlan", "10.232.0.0/16",
                                       num_networks=2, network_size=256, vlan_start=vlan_start)
            from cloudd.network.floating import create_floating_ips

            await create_floating_ips(cloud.db, "198.51.100.16/29", "nova", public)
            key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheMetadataTest test@cloudd"
            rows, _ = await cloud.boot(name="alpha", key_name="k1", key_data=key)
            uuid1 = rows[0]["uuid"]
            rows, _ = await cloud.boot(name="beta")
            uuid2 = rows[0]["uuid"]
            # beta belongs to another project: VLANManager gives it the second network.
            await cloud.db.execute("UPDATE instances SET project_id = 'p2' WHERE uuid = $1", uuid2)
            for uuid in (uuid1, uuid2):
                await cloud.wait_state(uuid, "active", limit=30)
            nic1, nic2 = await vif(cloud, uuid1), await vif(cloud, uuid2)
            assert {nic1["bridge"], nic2["bridge"]} == set(bridges)
            ip1 = await lab.guest("a", nic1["bridge"], nic1["mac"], device_name(nic1["vif_uuid"]))
            ip2 = await lab.guest("b", nic2["bridge"], nic2["mac"], device_name(nic2["vif_uuid"]))
            assert (ip1, ip2) == (nic1["ip"], nic2["ip"])
            await wait_for(functools.partial(_is_leased, cloud, ip2), 10, "beta's lease")
            guest1, guest2 = lab.namespaces[1], lab.namespaces[2]

            # Each reaches its own gateway, never the other project's guest or gateway.
            gw1 = (await cloud.db.fetchval("SELECT gateway FROM networks WHERE bridge = $1", nic1["bridge"]))
            gw2 = (await cloud.db.fetchval("SELECT gateway FROM networks WHERE bridge = $1", nic2["bridge"]))
            assert await ping(guest1, gw1) and await ping(guest2, gw2)
            assert not await ping(guest1, ip2) and not await ping(guest2, ip1)
            assert not await ping(guest1, gw2)

            # Metadata: each guest gets its own hostname and key.
            assert await fetch(guest1, "/latest/meta-data/hostname") == "alpha.novalocal"
            assert await fetch(guest1, "/latest/meta-data/public-keys/0/openssh-key") == key
            beta = json.loads(await fetch(guest2, "/openstack/latest/meta_data.json"))
            assert beta["hostname"] == "beta" and beta["keys"] == []
            assert await fetch(guest2, "/latest/meta-data/local-ipv4") == ip2

            # A floating IP, opened by a security-group rule, reachable from outside.
            network: NetworkService = cloud.host.get(NetworkService)
            servers.append(serve_tcp(guest1, 8080))
            fip = await network.allocate_floating_ip("p1")
            await network.associate_floating_ip(fip.address, ip1, "p1")
            assert not await tcp_ok(outside, fip.address, 8080), "the default group lets it in"
            from cloudd.network import secgroups

            group = await secgroups.get_group(cloud.db, "default", "p1")
            rule = await network.add_security_group_rule(group, parse_rule("tcp", 8080, 8080))
            assert await tcp_ok(outside, fip.address, 8080)

            # An agent restart leaves rules and addresses exactly as they were.
            before = _snapshot(public, bridges)
            await cloud.agent_host.stop()
            cloud.agent_host = build_agent(cloud.cfg)
            await cloud.agent_host.start()
            await cloud.wait_registered()
            await wait_for(functools.partial(_same, before, public, bridges), 10, "the state after restart")
            assert await tcp_ok(outside, fip.address, 8080)

            await network.delete_security_group_rule(rule)
            assert not await tcp_ok(outside, fip.address, 8080), "the rule's removal closes it"
            await network.add_security_group_rule(group, parse_rule("tcp", 8080, 8080))
            assert await tcp_ok(outside, fip.address, 8080)
            await network.disassociate_floating_ip(fip.address, "p1")
            assert not await tcp_ok(outside, fip.address, 8080), "disassociate cuts it"
        finally:
            for server in servers:
                server.kill()
            teardown_host(Path(cloud.cfg.default.state_dir), bridges)


async def fetch(ns: str, path: str) -> str:
    """GET http://169.254.169.254<path> from inside a guest namespace."""
    code = ("import sys,urllib.request\n"
            "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=15).read().decode())")
    result = await ash("ip", "netns", "exec", ns, "python3", "-c", code,
                       f"http://169.254.169.254{path}")
    return result.stdout


def _snapshot(public: str, bridges: list[str]) -> tuple[str, str]:
    rules = "\n".join(sorted(
        line for table in ("nat", "filter")
        for line in subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True,
                                   check=True).stdout.splitlines() if "cloudd" in line))
    addrs = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                           check=True).stdout
    mine = "\n".join(sorted(" ".join(line.split()[1:4]) for line in addrs.splitlines()
                            if line.split()[1] in (public, *bridges)))
    return rules, mine


async def _same(before: tuple[str, str], public: str, bridges: list[str]) -> bool:
    return _snapshot(public, bridges) == before
