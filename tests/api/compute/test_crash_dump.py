"""trigger_crash_dump (2.17): Nova's states, its null body, the NMI reaching the driver through
the compute RPC client, and the instance action recording it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness.api import BOOT_IMAGE, wait_status
from harness.api import ApiCloud as Cloud

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.service import AgentService

S = "/compute/v2.1/servers"


async def active_server(cloud: Cloud) -> str:
    code, body, _ = await cloud.call("POST", S, json={"server": {
        "name": "dump", "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert code == 202, body
    await wait_status(cloud, body["server"]["id"], "ACTIVE")
    return str(body["server"]["id"])


def fake_driver(cloud: Cloud) -> FakeDriver:
    assert cloud.host is not None
    driver = cloud.host.get(AgentService).driver
    assert isinstance(driver, FakeDriver)
    return driver


async def dump(cloud: Cloud, server_id: str, args: Any = None, version: str = "2.17",
               token: str | None = None) -> tuple[int, Any, Any]:
    return await cloud.call("POST", f"{S}/{server_id}/action", version=version, token=token,
                            json={"trigger_crash_dump": args})


async def test_crash_dump_reaches_the_driver(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    code, body, headers = await dump(cloud, server_id)
    assert (code, body) == (202, None)
    request = headers["X-OpenStack-Request-ID"]
    driver = fake_driver(cloud)
    for _ in range(100):
        if driver.nmis_injected(server_id):
            break
        await asyncio.sleep(0.05)
    assert driver.nmis_injected(server_id) == 1
    code, body, _ = await cloud.call(
        "GET", f"{S}/{server_id}/os-instance-actions/{request}", version="2.17")
    assert code == 200 and body["instanceAction"]["action"] == "trigger_crash_dump"
    server = await wait_status(cloud, server_id, "ACTIVE")  # no task state, no state change
    assert server["OS-EXT-STS:task_state"] is None


async def test_crash_dump_needs_2_17_and_a_null_body(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    code, body, _ = await dump(cloud, server_id, version="2.16")
    assert code == 404 and list(body) == ["itemNotFound"]
    bad: Any
    for bad in ({}, {"x": 1}, "now", 1, []):
        code, body, _ = await dump(cloud, server_id, bad)
        assert code == 400 and list(body) == ["badRequest"], bad
    assert fake_driver(cloud).nmis_injected(server_id) == 0


@pytest.mark.parametrize("stop", [{"os-stop": None}, {"suspend": None}])
async def test_crash_dump_refused_in_other_states(cloud: Cloud, stop: dict[str, Any]) -> None:
    server_id = await active_server(cloud)
    code, _, _ = await cloud.call("POST", f"{S}/{server_id}/action", json=stop)
    assert code == 202
    await wait_status(cloud, server_id, "SHUTOFF" if "os-stop" in stop else "SUSPENDED")
    code, body, _ = await dump(cloud, server_id)
    assert code == 409 and list(body) == ["conflictingRequest"], body


async def test_crash_dump_of_a_locked_or_foreign_server(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    member, _ = await cloud.user_token("dump-other", ("member", "reader"))
    code, body, _ = await dump(cloud, server_id, token=member)
    assert code == 404
    code, body, _ = await dump(cloud, "8a3c1d2e-0000-4000-8000-0000000000ff")
    assert code == 404 and list(body) == ["itemNotFound"]
