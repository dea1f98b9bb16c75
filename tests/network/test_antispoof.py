"""Guests cannot impersonate each other: namespaces plugged into a real bridge as the guests' tap
ports, the agent's real nftables anti-spoofing table, ARP caches read with ``ip neigh``, and
metadata fetched from inside the guests through the host's own proxy."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import aiohttp
import pytest
from harness.cloud import Cloud, wait_for
from harness.netlab import Lab, ash, network_cloud, ping, teardown_host

from cloudd.agent.network import antispoof
from cloudd.api.hosthealth import ask_host
from cloudd.conductor.service import ConductorService
from cloudd.manage.status import Finding, host_findings
from cloudd.network import ipam
from cloudd.network.service import NetworkService
from cloudd.rpc.contracts.network import device_name

from .test_dhcp_nat import _is_leased, vif

pytestmark = pytest.mark.slow

# An ARP frame sent raw from inside a namespace: ``op`` 1 (request, broadcast) or 2 (reply to
# ``target_mac``), claiming ``sender_ip`` is at ``sender_mac``.
SEND_ARP = """
import socket, sys
dev, op, sender_mac, sender_ip, target_mac, target_ip = sys.argv[1:7]
mac = lambda m: bytes.fromhex(m.replace(":", ""))
dst = mac(target_mac) if op == "2" else b"\\xff" * 6
frame = (dst + mac(sender_mac) + b"\\x08\\x06" + bytes([0, 1, 8, 0, 6, 4, 0, int(op)])
         + mac(sender_mac) + socket.inet_aton(sender_ip)
         + (mac(target_mac) if op == "2" else bytes(6)) + socket.inet_aton(target_ip))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
s.send(frame)
"""
FETCH = """
import os, sys, urllib.request
data = os.environ["POSTED"].encode() if "POSTED" in os.environ else None
request = urllib.request.Request(sys.argv[1], headers=dict(h.split(": ", 1) for h in sys.argv[2:]),
                                 data=data)
try:
    answer = urllib.request.urlopen(request, timeout=5)
    print(answer.status, answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"""


async def send_arp(ns: str, op: int, sender_mac: str, sender_ip: str, target_mac: str,
                   target_ip: str) -> None:
    await ash("ip", "netns", "exec", ns, "python3", "-c", SEND_ARP, "eth0", str(op), sender_mac,
              sender_ip, target_mac, target_ip)


async def neighbour_mac(address: str, dev: str, ns: str | None = None) -> str:
    argv = ["ip", "-j", "neigh", "show", address, "dev", dev]
    out = (await ash(*(["ip", "netns", "exec", ns, *argv] if ns else argv))).stdout
    entries = json.loads(out or "[]")
    return str(entries[0].get("lladdr", "")) if entries else ""


async def fetch(ns: str, url: str, *headers: str, posted: str | None = None) -> tuple[int, str]:
    """GET ``url`` (POST `posted`) from inside ``ns``: (status, body), or (0, "") when nothing
    answers."""
    env = () if posted is None else (f"POSTED={posted}",)
    result = await ash("ip", "netns", "exec", ns, "env", *env, "python3", "-c", FETCH, url,
                       *headers, check=False)
    if result.returncode != 0 or not result.stdout:
        return 0, ""
    status, _, body = result.stdout.partition(" ")
    return int(status), body


async def set_address(ns: str, address: str, gateway: str) -> None:
    await ash("ip", "-n", ns, "addr", "flush", "dev", "eth0")
    await ash("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
    await ash("ip", "-n", ns, "route", "replace", "default", "via", gateway)


async def boot_guest(cloud: Cloud, lab: Lab, name: str) -> dict[str, str]:
    rows, _ = await cloud.boot(name=name)
    uuid = rows[0]["uuid"]
    await cloud.wait_state(uuid, "active")
    nic = await vif(cloud, uuid)
    device = device_name(nic["vif_uuid"])
    ip = await lab.guest(name, nic["bridge"], nic["mac"], device)
    assert ip == nic["ip"], "DHCP from 0.0.0.0 passes the anti-spoofing rules"
    await wait_for(functools.partial(_is_leased, cloud, ip), 10, f"{name}'s lease")
    return {"uuid": uuid, "ip": ip, "mac": nic["mac"], "device": device,
            "ns": lab.namespaces[-1]}


async def test_guest_cannot_spoof_ip_mac_or_arp_and_metadata_knows_it_by_port(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = f"brs{lab.tag}"
    async with network_cloud(tmp_path, "FlatDHCPManager", flat_network_bridge=bridge,
                             metadata_proxy_port=0) as cloud:
        try:
            await ipam.create_networks(cloud.db, "FlatDHCPManager", "private", "10.231.9.0/24",
                                       bridge=bridge)
            gw = str(await cloud.db.fetchval("SELECT gateway FROM networks WHERE bridge = $1", bridge))
            a = await boot_guest(cloud, lab, "alpha")
            b = await boot_guest(cloud, lab, "beta")
            # No ARP lock time: an unprotected cache would take the forged answers at once.
            await ash("sysctl", "-q", "-w", f"net.ipv4.neigh.{bridge}.locktime=0")
            await ash("ip", "netns", "exec", a["ns"], "sysctl", "-q", "-w",
                      "net.ipv4.neigh.eth0.locktime=0")

            # Honest guests reach their gateway and each other (same default group).
            assert await ping(a["ns"], gw) and await ping(b["ns"], gw)
            assert await ping(a["ns"], b["ip"])
            assert await neighbour_mac(a["ip"], bridge) == a["mac"]
            assert await neighbour_mac(gw, "eth0", a["ns"]) != ""

            # beta takes alpha's IP: nothing it sends gets through, the host's cache stays right.
            await set_address(b["ns"], a["ip"], gw)
            assert not await ping(b["ns"], gw)
            status, _ = await fetch(b["ns"], "http://169.254.169.254/openstack/latest/meta_data.json")
            assert status == 0, "a spoofed source gets no metadata at all"
            assert await neighbour_mac(a["ip"], bridge) == a["mac"]
            assert await ping(a["ns"], gw)
            await set_address(b["ns"], b["ip"], gw)
            assert await ping(b["ns"], gw), "back to its own address, beta works again"

            # beta takes alpha's MAC: cut off, and the bridge does not learn alpha's MAC on beta's port.
            await ash("ip", "-n", b["ns"], "link", "set", "eth0", "address", a["mac"])
            assert not await ping(b["ns"], gw)
            assert await ping(a["ns"], gw)
            await ash("ip", "-n", b["ns"], "link", "set", "eth0", "address", b["mac"])
            assert await ping(b["ns"], gw)

            # Forged ARP from beta's own MAC: claiming alpha's IP to the host, the gateway's IP to alpha.
            await send_arp(b["ns"], 1, b["mac"], a["ip"], "00:00:00:00:00:00", gw)
            await send_arp(b["ns"], 2, b["mac"], gw, a["mac"], a["ip"])
            assert await neighbour_mac(a["ip"], bridge) == a["mac"]
            assert await neighbour_mac(gw, "eth0", a["ns"]) not in ("", b["mac"])
            assert await ping(a["ns"], gw) and await ping(a["ns"], b["ip"])

            await _metadata_by_port(cloud, a, b, gw)
            await _fails_closed(cloud, a, gw, monkeypatch)
        finally:
            teardown_host(Path(cloud.cfg.default.state_dir), [bridge])


async def _metadata_by_port(cloud: Cloud, a: dict[str, str], b: dict[str, str], gw: str) -> None:
    url = "http://169.254.169.254/openstack/latest/meta_data.json"
    status, body = await fetch(a["ns"], url)
    assert status == 200 and json.loads(body)["uuid"] == a["uuid"]
    # Headers a guest makes up are not forwarded: alpha still gets alpha's data only.
    status, body = await fetch(a["ns"], url, f"X-Forwarded-For: {b['ip']}",
                               f"X-Instance-ID: {b['uuid']}", "X-Instance-ID-Signature: 00")
    assert status == 200 and json.loads(body)["uuid"] == a["uuid"]
    status, body = await fetch(b["ns"], url)
    assert status == 200 and json.loads(body)["uuid"] == b["uuid"]
    # A guest posts its password through the proxy (os-server-password): its own only, once.
    password = "http://169.254.169.254/openstack/latest/password"
    assert (await fetch(a["ns"], password, posted="alpha-secret"))[0] == 200
    assert await fetch(a["ns"], password) == (200, "alpha-secret\n")  # print()'s newline
    assert await fetch(b["ns"], password) == (200, "\n")
    assert (await fetch(a["ns"], password, posted="again"))[0] == 409
    assert (await fetch(b["ns"], password, posted="x" * 300))[0] == 400  # refused by the proxy
    assert await fetch(b["ns"], password) == (200, "\n")
    # The controller's metadata port reached directly, with a forged forwarded-for: refused.
    direct = f"http://{gw}:{cloud.cfg.network.metadata_port}/openstack/latest/meta_data.json"
    status, body = await fetch(a["ns"], direct, f"X-Forwarded-For: {b['ip']}")
    assert status == 403 and b["uuid"] not in body
    status, _ = await fetch(a["ns"], direct, f"X-Instance-ID: {b['uuid']}",
                            "X-Tenant-ID: p1", "X-Instance-ID-Signature: " + "0" * 64)
    assert status == 403
    # The host's proxy serves guests on their gateway address only, not a local process.
    proxy_port = cloud.agent.network.metadata_proxy.port
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{proxy_port}/openstack/latest/meta_data.json",
            headers={"X-Forwarded-For": a["ip"]}) as answer:
        assert answer.status == 403 and a["uuid"] not in await answer.text()


async def _fails_closed(cloud: Cloud, a: dict[str, str], gw: str,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules that nft refuses to load leave the guest's port down, never open."""
    network: NetworkService = cloud.host.get(NetworkService)
    monkeypatch.setattr(antispoof, "NFT_COMMAND", ["nft", "-j", "-f", "/nonexistent/cloudd-rules"])
    await network.refresh_host(cloud.cfg.default.host)
    link = json.loads((await ash("ip", "-j", "link", "show", "dev", a["device"])).stdout)[0]
    assert "UP" not in link["flags"]
    assert not await ping(a["ns"], gw)
    # Nor is a new guest plugged in while its port cannot be guarded: its build fails.
    rows, _ = await cloud.boot(name="gamma")
    await cloud.wait_state(rows[0]["uuid"], "error")
    # `cloudd manage status` names the host and why (from the agent's host health).
    findings = await _status_findings(cloud)
    assert any(f.level == "fail" and f.subject == f"host {cloud.cfg.default.host}"
               and "anti-spoofing rules not loaded" in f.message for f in findings), findings
    monkeypatch.undo()
    await network.refresh_host(cloud.cfg.default.host)
    assert await ping(a["ns"], gw), "rules loaded again: the port is back"
    assert not any("anti-spoofing" in f.message for f in await _status_findings(cloud))


async def _status_findings(cloud: Cloud) -> list[Finding]:
    conductor = cloud.host.get(ConductorService)
    return host_findings(await ask_host(conductor, cloud.cfg.default.host))
