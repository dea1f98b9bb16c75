"""The console proxy against a real QEMU VNC server: the URL the API hands out, the relay both ways,
and every way a token is refused."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from harness.console import ConsoleCloud as Cloud
from harness.console import point_console_at

RFB_BANNER = b"RFB 003.008\n"


def token_of(url: str) -> str:
    path = parse_qs(urlsplit(url).query)["path"][0]  # "?token=..."
    return parse_qs(path.lstrip("?"))["token"][0]


async def rfb_handshake(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    """Read the server's banner, answer with ours, and read the security types."""
    banner = await ws.receive_bytes(timeout=10)
    await ws.send_bytes(RFB_BANNER)
    security = await ws.receive_bytes(timeout=10)
    return banner + security


async def test_console_url_relays_rfb_from_qemu(cloud: Cloud, qemu_vnc: int) -> None:
    server_id = await cloud.boot()
    url = await cloud.console_url(server_id)
    parts = urlsplit(url)
    assert parts.path == "/vnc_lite.html" and cloud.proxy.endswith(str(parts.port))
    await point_console_at(cloud.db, server_id, qemu_vnc)
    # noVNC's own form: the token rides in the websocket path.
    async with cloud.session.ws_connect(f"{cloud.proxy}/?token={token_of(url)}",
                                        protocols=("binary",)) as ws:
        assert ws.protocol == "binary"
        data = await rfb_handshake(ws)
    assert data.startswith(RFB_BANNER)
    # QEMU without a password offers security type 1 (None): count 1, type 1.
    assert data[len(RFB_BANNER):] == b"\x01\x01"


async def test_token_from_path_query_and_cookie(cloud: Cloud, qemu_vnc: int) -> None:
    server_id = await cloud.boot()
    token = token_of(await cloud.console_url(server_id))
    await point_console_at(cloud.db, server_id, qemu_vnc)
    async with cloud.session.ws_connect(f"{cloud.proxy}/websockify?path=%3Ftoken%3D{token}") as ws:
        assert (await ws.receive_bytes(timeout=10)) == RFB_BANNER
    async with aiohttp.ClientSession(cookies={"token": token}) as session, \
            session.ws_connect(f"{cloud.proxy}/websockify") as ws:
        assert (await ws.receive_bytes(timeout=10)) == RFB_BANNER
    # Tokens are multi-use within their TTL, as in Nova.
    async with cloud.session.ws_connect(f"{cloud.proxy}/?token={token}") as ws:
        assert (await ws.receive_bytes(timeout=10)) == RFB_BANNER


async def refusal(cloud: Cloud, token: str, origin: str | None = None) -> tuple[int, str]:
    """(HTTP status, body) for a non-browser; (close code, reason) for a browser."""
    if origin is None:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await cloud.session.ws_connect(f"{cloud.proxy}/?token={token}")
        async with cloud.session.get(f"{cloud.proxy}/?token={token}",
                                     headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                              "Sec-WebSocket-Version": "13",
                                              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
            return info.value.status, await r.text()
    async with cloud.session.ws_connect(f"{cloud.proxy}/?token={token}",
                                        headers={"Origin": origin}) as ws:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        return int(msg.data), str(msg.extra)


async def test_forged_expired_and_deleted_tokens_are_refused_with_a_reason(
        cloud: Cloud, qemu_vnc: int) -> None:
    assert await refusal(cloud, "forged-token") == (
        403, "invalid console token: unknown, or its server was deleted")
    code, reason = await refusal(cloud, "forged-token", origin=cloud.proxy)
    assert code == 4001 and "invalid console token" in reason

    server_id = await cloud.boot()
    token = token_of(await cloud.console_url(server_id))
    await point_console_at(cloud.db, server_id, qemu_vnc)
    await cloud.db.execute("UPDATE console_auth_tokens SET expires = $1", time.time() - 1)
    status, text = await refusal(cloud, token)
    assert status == 403 and "expired" in text
    code, reason = await refusal(cloud, token, origin=cloud.proxy)
    assert code == 4001 and "expired" in reason

    token = token_of(await cloud.console_url(server_id))
    code, _, _ = await cloud.call("DELETE", f"/compute/v2.1/servers/{server_id}")
    assert code == 204
    for _ in range(100):
        if not await cloud.db.fetchval("SELECT COUNT(*) FROM console_auth_tokens"):
            break
        await asyncio.sleep(0.05)
    status, text = await refusal(cloud, token)
    assert status == 403 and "deleted" in text


async def test_other_origins_are_refused(cloud: Cloud, qemu_vnc: int) -> None:
    server_id = await cloud.boot()
    token = token_of(await cloud.console_url(server_id))
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await cloud.session.ws_connect(f"{cloud.proxy}/?token={token}",
                                       headers={"Origin": "http://evil.example"})
    assert info.value.status == 403


async def test_a_project_cannot_get_another_projects_console(cloud: Cloud) -> None:
    alice, _ = await cloud.user_token("alice-project")
    bob, _ = await cloud.user_token("bob-project")
    server_id = await cloud.boot("alice-project")
    code, body, _ = await cloud.call("POST", f"/compute/v2.1/servers/{server_id}/action", bob,
                                  json={"os-getVNCConsole": {"type": "novnc"}})
    assert code == 404, body
    code, body, _ = await cloud.call("POST", f"/compute/v2.1/servers/{server_id}/remote-consoles",
                                  bob, version="2.6",
                                  json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert code == 404, body
    assert await cloud.console_url(server_id, alice)  # the owner can


async def test_remote_consoles_api_and_versions(cloud: Cloud) -> None:
    server_id = await cloud.boot()
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    path = f"/compute/v2.1/servers/{server_id}/remote-consoles"
    code, resp, _ = await cloud.call("POST", path, version="2.6", json=body)
    assert code == 200, resp
    assert resp["remote_console"]["protocol"] == "vnc"
    assert "path=%3Ftoken%3D" in resp["remote_console"]["url"]
    assert (await cloud.call("POST", path, version="2.5", json=body))[0] == 404
    code, resp, _ = await cloud.call("POST", path, version="2.6",
                                  json={"remote_console": {"protocol": "spice", "type": "spice-html5"}})
    assert code == 400, resp
    action = f"/compute/v2.1/servers/{server_id}/action"
    code, resp, _ = await cloud.call("POST", action, json={"os-getVNCConsole": {"type": "xvpvnc"}})
    assert code == 400, resp
    code, _, _ = await cloud.call("POST", action, json={"os-stop": None})
    assert code == 202
    for _ in range(100):
        code, resp, _ = await cloud.call("POST", action, json={"os-getVNCConsole": {"type": "novnc"}})
        if code == 409:
            break
        await asyncio.sleep(0.05)
    assert code == 409, resp  # a stopped server has no VNC server
