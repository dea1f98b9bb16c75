"""os-console-auth-tokens (Nova's, admin, 2.31+): what a console URL's token opens, and 404 for
a token that opens nothing (unknown, or its server deleted), without echoing it."""

from __future__ import annotations

import asyncio

from harness.console import ConsoleCloud as Cloud

from .test_relay import token_of

T = "/compute/v2.1/os-console-auth-tokens"


async def test_an_admin_reads_what_a_token_opens(cloud: Cloud) -> None:
    server_id = await cloud.boot()
    token = token_of(await cloud.console_url(server_id))
    code, body, _ = await cloud.call("GET", f"{T}/{token}", version="2.31")
    assert code == 200, body
    console = body["console"]
    assert console["instance_uuid"] == server_id and console["internal_access_path"] is None
    assert isinstance(console["port"], int) and console["host"]
    code, body, _ = await cloud.call("GET", f"{T}/{token}", version="2.30")
    assert code == 400  # below 2.31 Nova shows rdp-html5 tokens only
    member, _ = await cloud.user_token("token-reader")
    code, body, _ = await cloud.call("GET", f"{T}/{token}", member, version="2.31")
    assert code == 403 and list(body) == ["forbidden"]

    code, body, _ = await cloud.call("GET", f"{T}/not-a-token", version="2.31")
    assert code == 404 and "not-a-token" not in str(body)
    code, _, _ = await cloud.call("DELETE", f"/compute/v2.1/servers/{server_id}")
    assert code == 204
    for _ in range(100):  # the host destroys the guest, then the server's tokens go
        if (await cloud.call("GET", f"/compute/v2.1/servers/{server_id}"))[0] == 404:
            break
        await asyncio.sleep(0.05)
    code, body, _ = await cloud.call("GET", f"{T}/{token}", version="2.31")
    assert code == 404 and token not in str(body)
