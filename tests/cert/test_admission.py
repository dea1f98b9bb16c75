"""Who gets through the agent port: a running all-in-one (its agent "ctl" connected over mutual
TLS) attacked on that port with real TLS clients. Each refusal is checked together with what
must not have changed: the connected agents, the services and compute_nodes rows, the images."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from crafted_images import make_image
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from harness.config import host_tls_context
from harness.console import ConsoleCloud as Cloud
from harness.rows import Row, as_row

from cloudd.agent.service import AgentService
from cloudd.agent.tls import client_context
from cloudd.cert.ca import CLIENT_AUTH, key_pem, name, pem, write_private, write_public
from cloudd.cert.enroll import enroll_host
from cloudd.cert.service import CertService
from cloudd.conductor.service import ConductorService
from cloudd.frontdoor.compute import BuildRequest, ComputeAPI
from cloudd.image import records as images
from cloudd.image.for_compute import create_snapshot_image
from cloudd.rpc import RpcDispatcher, RpcError, RpcPeer
from cloudd.rpc.contracts.compute import HostResources
from cloudd.rpc.contracts.conductor import PREFIX, Registered, RegisterHost

REFUSED = (aiohttp.ClientError, ConnectionError, ssl.SSLError)


def conductor(cloud: Cloud) -> ConductorService:
    return cloud.host.get(ConductorService)


def agent_url(cloud: Cloud, scheme: str = "wss") -> str:
    return f"{scheme}://127.0.0.1:{conductor(cloud).port}/agent"


def image_url(cloud: Cloud, image_id: str) -> str:
    return f"https://127.0.0.1:{conductor(cloud).port}/images/{image_id}"


def trusting_hosts_ca(cloud: Cloud) -> ssl.SSLContext:
    """A client that verifies the controller, as an agent does, with no certificate of its own."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=str(cloud.host.get(CertService).hosts_authority.cert_file))
    return ctx


def context_from(directory: Path, key: str, cert_pem: str, cloud: Cloud) -> ssl.SSLContext:
    write_private(directory / "key.pem", key.encode())
    write_public(directory / "cert.pem", cert_pem)
    write_public(directory / "ca.pem",
                 pem(cloud.host.get(CertService).hosts_authority.cert))
    return client_context(directory)


async def host_context(cloud: Cloud, tmp_path: Path, host_name: str) -> ssl.SSLContext:
    """The TLS context of an enrolled host `host_name` (what /enroll gives for its CSR)."""
    return await host_tls_context(cloud.host, tmp_path, host_name)


async def cloud_state(cloud: Cloud) -> dict[str, Any]:
    """What an intruder must not change: the links, the services and nodes (not their clocks)."""
    return {
        "agents": dict(conductor(cloud).agents),
        "links": dict(conductor(cloud).links),
        "services": await cloud.db.fetch(
            "SELECT id, uuid, host, \"binary\", disabled FROM services ORDER BY id"),
        "nodes": await cloud.db.fetch(
            "SELECT id, uuid, host, hypervisor_hostname, vcpus, memory_mb FROM compute_nodes"
            " ORDER BY id"),
    }


@asynccontextmanager
async def rpc_link(cloud: Cloud, tls: ssl.SSLContext) -> AsyncIterator[RpcPeer]:
    """A raw RPC link to the conductor, as a hand-made agent would open it."""
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(agent_url(cloud), ssl=tls) as ws:
        peer = RpcPeer(ws, RpcDispatcher(), name="intruder")
        reader = asyncio.create_task(peer.run())
        try:
            yield peer
        finally:
            await ws.close()
            reader.cancel()


def register(host: str) -> RegisterHost:
    node = HostResources(hypervisor_hostname=f"{host}-node", hypervisor_type="fake",
                         hypervisor_version=1, vcpus=64, memory_mb=65536, local_gb=1000)
    return RegisterHost(host=host, nodes=[node])


async def fetch_image(cloud: Cloud, tls: ssl.SSLContext | bool, image_id: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, \
            session.get(image_url(cloud, image_id), ssl=tls) as resp:
        return resp.status, await resp.read()


async def test_a_stranger_on_the_agent_port_gets_nothing(cloud: Cloud) -> None:
    before = await cloud_state(cloud)
    assert list(before["agents"]) == ["ctl"]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(REFUSED):  # plain websocket: there is no plain listener
            await session.ws_connect(agent_url(cloud, "ws"))
        with pytest.raises(REFUSED):  # TLS without a client certificate: the handshake fails
            await session.ws_connect(agent_url(cloud), ssl=trusting_hosts_ca(cloud))
    with pytest.raises(REFUSED):
        await fetch_image(cloud, trusting_hosts_ca(cloud), str(uuid.uuid4()))
    assert await cloud_state(cloud) == before


async def test_a_user_certificate_is_refused(cloud: Cloud, tmp_path: Path) -> None:
    token, _ = await cloud.user_token("tenant")
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-certificates", token)
    assert code == 200, body
    user = context_from(tmp_path / "user", body["certificate"]["private_key"],
                        body["certificate"]["data"], cloud)
    before = await cloud_state(cloud)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(REFUSED):
            await session.ws_connect(agent_url(cloud), ssl=user)
    with pytest.raises(REFUSED):
        await fetch_image(cloud, user, str(uuid.uuid4()))
    assert await cloud_state(cloud) == before


async def test_hosts_ca_certificates_not_enrolled_or_revoked_are_refused(
        cloud: Cloud, tmp_path: Path) -> None:
    cert = cloud.host.get(CertService)
    # Signed by the hosts CA but never issued by enrolment (not recorded as an agent's).
    key = ec.generate_private_key(ec.SECP256R1())
    stray = cert.hosts_authority.sign(key.public_key(), name("stray", "cloudd hosts"), 1,
                                      usage=CLIENT_AUTH)
    stray_tls = context_from(tmp_path / "stray", key_pem(key), pem(stray), cloud)
    revoked_tls = await host_context(cloud, tmp_path, "gone")
    assert await cert.revoke_certs_by_host("gone") == 1
    before = await cloud_state(cloud)
    async with aiohttp.ClientSession() as session:
        for tls in (stray_tls, revoked_tls):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(agent_url(cloud), ssl=tls)
            assert info.value.status == 403
    assert await cloud_state(cloud) == before


async def test_a_host_cannot_register_or_act_as_another(cloud: Cloud, tmp_path: Path) -> None:
    before = await cloud_state(cloud)
    tls = await host_context(cloud, tmp_path, "host-a")
    async with rpc_link(cloud, tls) as peer:
        # Bound at the handshake, before it said anything.
        await asyncio.sleep(0)
        assert conductor(cloud).links["host-a"].identity == "host-a"
        for victim in ("ctl", "host-b"):
            with pytest.raises(RpcError) as info:
                await peer.call(PREFIX + "register_host", register(victim), Registered)
            assert info.value.code == "forbidden"
        after = await cloud_state(cloud)
        assert after["agents"] == before["agents"] and after["services"] == before["services"]
        assert after["nodes"] == before["nodes"]
        assert not conductor(cloud).agents["ctl"].closed
        # Its own name registers.
        registered = await peer.call(PREFIX + "register_host", register("host-a"), Registered)
        assert registered.service_id
    assert await cloud.db.fetchval("SELECT COUNT(*) FROM services WHERE host = 'host-b'") == 0


async def test_a_connected_host_name_cannot_be_taken_over(cloud: Cloud, tmp_path: Path) -> None:
    first = conductor(cloud).agents["ctl"]
    impostor = await host_context(cloud, tmp_path, "ctl")  # a valid certificate for that name
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(agent_url(cloud), ssl=impostor)
        assert info.value.status == 409
    assert conductor(cloud).agents["ctl"] is first and not first.closed
    assert cloud.host.get(AgentService).connected

    # Once the first link is gone, the host reconnects (the agent does so by itself).
    await first.close()
    deadline = asyncio.get_running_loop().time() + 20
    while conductor(cloud).agents.get("ctl") in (None, first):
        assert asyncio.get_running_loop().time() < deadline, "the agent did not reconnect"
        await asyncio.sleep(0.05)
    assert not conductor(cloud).agents["ctl"].closed


async def create_image(cloud: Cloud, token: str, data: bytes, **fields: Any) -> str:
    body = {"name": f"img-{uuid.uuid4().hex[:6]}", "container_format": "bare",
            "disk_format": "raw", **fields}
    code, image, _ = await cloud.call("POST", "/image/v2/images", token, json=body)
    assert code == 201, image
    async with cloud.session.put(
            f"{cloud.base}/image/v2/images/{image['id']}/file", data=data,
            headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 204, await resp.text()
    return str(image["id"])


async def boot_on_ctl(cloud: Cloud, image_id: str) -> Row:
    project_id = await cloud.db.fetchval("SELECT id FROM projects WHERE name = 'admin'")
    flavor = await cloud.db.fetchrow("SELECT * FROM flavors WHERE flavorid = '1'")
    assert flavor is not None
    req = BuildRequest(name="vm", flavor=flavor, project_id=project_id, user_id="u1",
                       image_ref=image_id)
    (created,) = await ComputeAPI(cloud.host).create(req, f"req-{uuid.uuid4()}")
    row = as_row(created)
    assert row["host"] in (None, "ctl")
    return row


async def test_image_routes_serve_only_the_hosts_own_images(cloud: Cloud, tmp_path: Path) -> None:
    admin = cloud.admin_token
    kernel_bytes, disk_bytes, secret_bytes = b"K" * 1000, bytes(4096), b"secret" * 500
    kernel = await create_image(cloud, admin, kernel_bytes, container_format="aki",
                                disk_format="aki")
    disk = await create_image(cloud, admin, disk_bytes, kernel_id=kernel)
    other = await create_image(cloud, (await cloud.user_token("other"))[0], secret_bytes,
                               visibility="private")
    server = await boot_on_ctl(cloud, disk)
    ctl = await host_context(cloud, tmp_path, "ctl")
    host_a = await host_context(cloud, tmp_path, "host-a")

    assert await fetch_image(cloud, ctl, disk) == (200, disk_bytes)
    assert await fetch_image(cloud, ctl, kernel) == (200, kernel_bytes)  # its boot image's kernel
    assert (await fetch_image(cloud, ctl, other))[0] == 404  # no instance of ctl uses it
    assert (await fetch_image(cloud, ctl, str(uuid.uuid4())))[0] == 404
    for image_id in (disk, kernel, other):  # another host's instances' images
        assert (await fetch_image(cloud, host_a, image_id))[0] == 404

    # Snapshot uploads: only into a queued snapshot of an instance on the uploading host.
    snapshot = await create_snapshot_image(cloud.db, server, name="snap", metadata={},
                                           user_id="u1", user_name="u1", project_name="admin")
    async with aiohttp.ClientSession() as session:
        for tls, image_id in ((host_a, snapshot.id), (ctl, other), (ctl, disk)):
            url = image_url(cloud, image_id) + "/snapshot"
            async with session.put(url, data=b"forged", ssl=tls) as resp:
                assert resp.status == 404
        with pytest.raises(REFUSED):
            await session.put(image_url(cloud, snapshot.id) + "/snapshot", data=b"forged",
                              ssl=trusting_hosts_ca(cloud))
    assert (await images.get(cloud.db, snapshot.id)).status == "queued"
    assert (await fetch_image(cloud, ctl, disk)) == (200, disk_bytes)
    assert (await fetch_image(cloud, await host_context(cloud, tmp_path, "other-host"), other)
            )[0] == 404
    # And the host's own upload (a real qcow2, as snapshots are) goes in.
    qcow2 = await asyncio.to_thread(make_image, "qcow2", tmp_path)
    async with aiohttp.ClientSession() as session, session.put(
            image_url(cloud, snapshot.id) + "/snapshot", data=qcow2.read_bytes(),
            ssl=ctl) as resp:
        assert resp.status == 204, await resp.text()
    assert (await images.get(cloud.db, snapshot.id)).status == "active"


async def test_the_enrolment_port_gives_certificates_for_valid_tokens_only(cloud: Cloud) -> None:
    base = f"https://127.0.0.1:{conductor(cloud).enroll_port}"
    key = ec.generate_private_key(ec.SECP256R1())
    # The CSR asks for "ctl": the certificate names the host the token was made for.
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ctl")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    token = await enroll_host(cloud.db, "newhost", cloud.host.config.cert.ca_path)
    tls = trusting_hosts_ca(cloud)  # the enrolment port needs no client certificate
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/ca.pem", ssl=tls) as resp:
            assert resp.status == 200
            assert await resp.text() == pem(cloud.host.get(CertService).hosts_authority.cert)
        for body, status in ((b"not json", 400), (b'{"token": "x"}', 400),
                             (b'{"token": "' + b"x" * 200_000 + b'", "csr": "y"}', 413),
                             (b'{"token": "a.' + b"0" * 64 + b'", "csr": "y"}', 403)):
            async with session.post(f"{base}/enroll", data=body, ssl=tls) as resp:
                assert resp.status == status, await resp.text()
        async with session.post(f"{base}/enroll", json={"token": token, "csr": csr},
                                ssl=tls) as resp:
            assert resp.status == 200
            issued = x509.load_pem_x509_certificate((await resp.json())["certificate"].encode())
        async with session.post(f"{base}/enroll", json={"token": token, "csr": csr},
                                ssl=tls) as resp:
            assert resp.status == 403  # used up
        with pytest.raises(aiohttp.WSServerHandshakeError):  # no agent link on this port
            await session.ws_connect(f"wss://127.0.0.1:{conductor(cloud).enroll_port}/agent",
                                     ssl=tls)
    names = issued.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [n.value for n in names] == ["newhost"]
    assert await cloud.db.fetchval(
        "SELECT host FROM certificates WHERE serial = $1", f"{issued.serial_number:X}") == "newhost"
