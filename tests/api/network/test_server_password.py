"""os-server-password: a guest posts its (encrypted) password once to the metadata service,
signed by its host's proxy; its owner reads and clears it through the Compute API. Refused:
a second post (409), a post over 256 bytes (400), a metadata version before 2013-04-04, a
reader's or another project's clear, another project's read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from harness.api import ApiCloud, active_server

from cloudd.network.metadata import SECRET_FILE
from cloudd.network.metadata_signing import PROXY_HOST_HEADER, host_key, sign
from cloudd.network.service import NetworkService

PASSWORD = "c2VjcmV0LXBhc3N3b3JkLWVuY3J5cHRlZC13aXRoLXRoZS1rZXk="


async def metadata(cloud: ApiCloud, server: dict[str, Any], method: str, path: str,
                   data: bytes | None = None) -> tuple[int, str]:
    """`method` on the controller's metadata service as the server's host proxy sends it."""
    secret = (Path(cloud.host.config.default.state_dir) / SECRET_FILE).read_text().strip()
    host = str(server["OS-EXT-SRV-ATTR:host"])
    headers = {"X-Instance-ID": server["id"], "X-Tenant-ID": server["tenant_id"],
               "X-Instance-ID-Signature": sign(host_key(secret, host), server["id"]),
               PROXY_HOST_HEADER: host}
    port = cloud.host.get(NetworkService).metadata.port
    async with aiohttp.ClientSession() as session, session.request(
            method, f"http://127.0.0.1:{port}{path}", headers=headers, data=data) as answer:
        return answer.status, await answer.text()


async def test_guest_posts_owner_reads_and_clears(netcloud: ApiCloud) -> None:
    cloud = netcloud
    server = await active_server(cloud, "pw")
    api = f"/compute/v2.1/servers/{server['id']}/os-server-password"
    code, body, _ = await cloud.call("GET", api)
    assert code == 200 and body == {"password": ""}
    assert "password" in (await metadata(cloud, server, "GET", "/openstack/latest/"))[1]

    posted = await metadata(cloud, server, "POST", "/openstack/latest/password", PASSWORD.encode())
    assert posted[0] == 200
    assert await metadata(cloud, server, "GET", "/openstack/2013-04-04/password") == (200, PASSWORD)
    code, body, _ = await cloud.call("GET", api)
    assert code == 200 and body == {"password": PASSWORD}
    again = await metadata(cloud, server, "POST", "/openstack/latest/password", b"other")
    assert again[0] == 409  # set once: a process in the guest cannot replace it
    assert (await cloud.call("GET", api))[1] == {"password": PASSWORD}

    code, _, _ = await cloud.call("DELETE", api)
    assert code == 204
    assert (await cloud.call("GET", api))[1] == {"password": ""}
    posted = await metadata(cloud, server, "POST", "/openstack/latest/password", b"new")
    assert posted[0] == 200  # cleared: the guest may post a new one


async def test_refusals(netcloud: ApiCloud) -> None:
    cloud = netcloud
    server = await active_server(cloud, "pw-refused")
    api = f"/compute/v2.1/servers/{server['id']}/os-server-password"
    too_long = await metadata(cloud, server, "POST", "/openstack/latest/password", b"x" * 257)
    assert too_long[0] == 400
    for version in ("2012-08-10", "not-a-date"):
        code, _ = await metadata(cloud, server, "POST", f"/openstack/{version}/password", b"pw")
        assert code == 404, version
    assert (await cloud.call("GET", api))[1] == {"password": ""}
    posted = await metadata(cloud, server, "POST", "/openstack/latest/password", b"x" * 256)
    assert posted[0] == 200

    other, _ = await cloud.user_token("pw-other", ("member", "reader"))
    assert (await cloud.call("GET", api, token=other))[0] == 404
    assert (await cloud.call("DELETE", api, token=other))[0] == 404
    _, project, _ = await cloud.call("GET", f"/identity/v3/projects/{cloud.admin_project}")
    reader, _ = await cloud.user_token(project["project"]["name"], ("reader",))
    assert (await cloud.call("GET", api, token=reader))[1] == {"password": "x" * 256}
    code, body, _ = await cloud.call("DELETE", api, token=reader)
    assert code == 403 and list(body) == ["forbidden"]
    assert (await cloud.call("GET", api))[1] == {"password": "x" * 256}
