"""The controller's metadata service serves a request only with a valid instance-id signature
(or, from a configured trusted proxy, by X-Forwarded-For); the Flat manager's host gets the
anti-spoofing table too. Real HTTP to the real service, the real nft table."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from harness.netlab import Lab, ash, network_cloud, teardown_host
from harness.rows import Row

from cloudd.agent.network import antispoof
from cloudd.network import ipam
from cloudd.network.metadata import SECRET_FILE
from cloudd.network.metadata_signing import PROXY_HOST_HEADER, host_key, sign
from cloudd.rpc.contracts.network import device_name

from .test_dhcp_nat import vif

pytestmark = pytest.mark.slow
META = "/openstack/latest/meta_data.json"


async def get(port: int, headers: dict[str, str], source: str = "127.0.0.1",
              path: str = META) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.get(
            f"http://127.0.0.1:{port}{path}", headers=headers) as answer:
        return answer.status, await answer.text()


def signed(secret: str, instance: Row, tenant: str | None = None,
           host: str = "agent1", key_of: str | None = None) -> dict[str, str]:
    """The headers the proxy of ``host`` sends, signed with the key of ``key_of`` (its own)."""
    key = host_key(secret, key_of or host)
    return {"X-Instance-ID": instance["uuid"], "X-Tenant-ID": tenant or instance["project_id"],
            "X-Instance-ID-Signature": sign(key, instance["uuid"]), PROXY_HOST_HEADER: host}


async def test_metadata_needs_a_signature_or_a_trusted_proxy(lab: Lab, tmp_path: Path) -> None:
    bridge = f"brm{lab.tag}"
    async with network_cloud(tmp_path, "FlatManager", flat_network_bridge=bridge,
                             metadata_trusted_proxies="127.0.0.2") as cloud:
        try:
            await ipam.create_networks(cloud.db, "FlatManager", "private", "10.231.11.0/24",
                                       bridge=bridge)
            alpha: list[Row] = []
            beta: list[Row] = []
            for name, into in (("alpha", alpha), ("beta", beta)):
                rows, _ = await cloud.boot(name=name, user_data="c2VjcmV0IG9mIGFscGhh")
                await cloud.wait_state(rows[0]["uuid"], "active")
                into.append(await cloud.instance(rows[0]["uuid"]))
            a, b = alpha[0], beta[0]
            a_ip = (await vif(cloud, a["uuid"]))["ip"]
            port = cloud.cfg.network.metadata_port
            secret = (Path(cloud.cfg.default.state_dir) / SECRET_FILE).read_text().strip()

            # Nothing, or a forwarded-for from an untrusted address (loopback included): 403.
            assert (await get(port, {}))[0] == 403
            status, body = await get(port, {"X-Forwarded-For": a_ip})
            assert status == 403 and a["uuid"] not in body
            assert (await get(port, {"X-Forwarded-For": a_ip}, path="/latest/user-data"))[0] == 403

            # A wrong signature, another instance's signature, another tenant: 403.
            forged = signed(secret, a) | {"X-Instance-ID-Signature": "0" * 64}
            assert (await get(port, forged))[0] == 403
            assert (await get(port, signed(secret, b) | {"X-Instance-ID": a["uuid"]}))[0] == 403
            assert (await get(port, signed(secret, a, tenant=b["project_id"] + "x")))[0] == 403
            assert (await get(port, signed("not-the-secret", a)))[0] == 403
            # Nova's shared secret itself is no key; another host's key signs for none of agent1's
            # guests, neither as itself nor claiming to be agent1.
            bare = signed(secret, a) | {"X-Instance-ID-Signature": sign(secret, a["uuid"])}
            assert (await get(port, bare))[0] == 403
            assert (await get(port, signed(secret, a, host="agent2")))[0] == 403
            assert (await get(port, signed(secret, a, key_of="agent2")))[0] == 403
            # Signed garbage is a clean 404, never a 500.
            garbage = {"X-Instance-ID": "../x", "X-Tenant-ID": "p", PROXY_HOST_HEADER: "agent1",
                       "X-Instance-ID-Signature": sign(host_key(secret, "agent1"), "../x")}
            assert (await get(port, garbage))[0] == 404

            # The signed request gets that instance's data, and only it.
            status, body = await get(port, signed(secret, a))
            assert status == 200 and json.loads(body)["uuid"] == a["uuid"]
            status, body = await get(port, signed(secret, b))
            assert status == 200 and json.loads(body)["uuid"] == b["uuid"]
            # cloud-init reads vendor_data.json too: Nova serves it, empty without vendor data.
            status, body = await get(port, signed(secret, a), path="/openstack/latest/vendor_data.json")
            assert status == 200 and json.loads(body) == {}

            # The configured trusted proxy's forwarded-for counts (its own, rightmost entry).
            status, body = await get(port, {"X-Forwarded-For": f"10.9.9.9, {a_ip}"}, "127.0.0.2")
            assert status == 200 and json.loads(body)["uuid"] == a["uuid"]

            # Flat networking (no firewall) still gets the per-port anti-spoofing rules.
            nic = await vif(cloud, a["uuid"])
            table = (await ash("nft", "list", "table", "bridge", antispoof.TABLE)).stdout
            device = device_name(nic["vif_uuid"])
            assert f'iifname "{device}" jump port-{device}' in table
            assert f"ether saddr != {nic['mac']} drop" in table and f"ip saddr {a_ip} accept" in table
        finally:
            teardown_host(Path(cloud.cfg.default.state_dir), [])
