"""A console target reported by an agent is checked before a token is made: a false agent cannot
aim the console proxy at another address or at a port outside the VNC range (here: the
controller's own API port). The API answers 409 and no console token exists for it."""

from __future__ import annotations

from urllib.parse import urlsplit

from harness.console import ConsoleCloud as Cloud

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.service import AgentService


async def tokens(cloud: Cloud, server_id: str) -> int:
    return int(await cloud.db.fetchval(
        "SELECT COUNT(*) FROM console_auth_tokens WHERE instance_uuid = $1", server_id) or 0)


async def test_a_console_target_off_the_host_or_its_vnc_ports_is_refused(cloud: Cloud) -> None:
    server_id = await cloud.boot()
    await cloud.console_url(server_id)  # the host's own loopback VNC port: a token
    assert await tokens(cloud, server_id) == 1
    driver = cloud.host.get(AgentService).driver
    assert isinstance(driver, FakeDriver)
    guest = driver._guests[server_id]
    api_port = urlsplit(cloud.base).port
    for listen, port in [("127.0.0.1", api_port), ("192.0.2.7", guest.vnc_port)]:
        driver.vnc_listen, guest.vnc_port = listen, port or 0
        code, body, _ = await cloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                      json={"os-getVNCConsole": {"type": "novnc"}})
        assert code == 409, body
        assert "console" in body["conflictingRequest"]["message"]
        assert await tokens(cloud, server_id) == 1
