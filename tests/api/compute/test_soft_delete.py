"""Soft delete ([DEFAULT] reclaim_instance_interval, Nova's): a deleted server that ran is
powered off and kept as SOFT_DELETED (its quota too), `restore` brings it back, `forceDelete`
ends it at once, and the reclaim deletes it for good once its time is up. A server that never
ran is deleted at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import active_server, running_cloud, wait_status

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.service import AgentService
from cloudd.vocab import power_state

S = "/compute/v2.1/servers"


@pytest.fixture
async def kept_cloud(db_url: str, tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path, database={"connection": db_url},
                             default={"reclaim_instance_interval": "3600"}) as cloud:
        yield cloud


async def guest_power(cloud: Cloud, server_id: str) -> int:
    return (await cloud.host.get(AgentService).driver.get_info(server_id)).power_state


async def act(cloud: Cloud, server_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    code, answer, _ = await cloud.call("POST", f"{S}/{server_id}/action", json=body)
    return code, answer


async def test_delete_keeps_restore_brings_back(kept_cloud: Cloud) -> None:
    cloud = kept_cloud
    server_id = (await active_server(cloud, "kept"))["id"]
    code, _ = await act(cloud, server_id, {"restore": None})
    assert code == 409  # only a soft-deleted server can be restored
    code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
    assert code == 204
    server = await wait_status(cloud, server_id, "SOFT_DELETED")
    assert server["OS-EXT-STS:vm_state"] == "soft-delete"
    assert await guest_power(cloud, server_id) == power_state.SHUTDOWN  # off, not destroyed
    _, limits, _ = await cloud.call("GET", "/compute/v2.1/limits")
    assert limits["limits"]["absolute"]["totalInstancesUsed"] == 1  # still held

    code, _ = await act(cloud, server_id, {"restore": None})
    assert code == 202
    await wait_status(cloud, server_id, "ACTIVE")
    assert await guest_power(cloud, server_id) == power_state.RUNNING
    _, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions")
    assert [a["action"] for a in body["instanceActions"]][:2] == ["restore", "delete"]


async def test_force_delete_ends_a_soft_deleted_server(kept_cloud: Cloud) -> None:
    cloud = kept_cloud
    server_id = (await active_server(cloud, "forced"))["id"]
    code, body = await act(cloud, server_id, {"forceDelete": None})
    assert code == 409 and list(body) == ["conflictingRequest"]  # not soft-deleted
    code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
    await wait_status(cloud, server_id, "SOFT_DELETED")
    code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
    assert code == 204  # again: it stays soft-deleted
    assert (await wait_status(cloud, server_id, "SOFT_DELETED"))["id"] == server_id
    code, body = await act(cloud, server_id, {"forceDelete": {"now": True}})
    assert code == 400
    code, _ = await act(cloud, server_id, {"forceDelete": None})
    assert code == 202
    await wait_status(cloud, server_id, "DELETED")
    other, _ = await cloud.user_token("soft-other", ("member", "reader"))
    code, _, _ = await cloud.call("POST", f"{S}/{server_id}/action", token=other,
                                  json={"restore": None})
    assert code == 404


async def test_a_server_that_never_ran_is_deleted_at_once(kept_cloud: Cloud) -> None:
    cloud = kept_cloud
    driver = cloud.host.get(AgentService).driver
    assert isinstance(driver, FakeDriver)
    driver.fail["spawn"] = 1.0
    code, body, _ = await cloud.call("POST", S, json={"server": {
        "name": "never", "imageRef": "8a3c1d2e-0000-4000-8000-000000000001", "flavorRef": "1"}})
    assert code == 202
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ERROR")
    code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
    assert code == 204
    await wait_status(cloud, server_id, "DELETED")


async def test_the_reclaim_deletes_for_good(db_url: str, tmp_path: Path) -> None:
    async with running_cloud(tmp_path, database={"connection": db_url},
                             default={"reclaim_instance_interval": "1"}) as cloud:
        server_id = (await active_server(cloud, "reclaimed"))["id"]
        code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
        assert code == 204
        await wait_status(cloud, server_id, "DELETED", limit=20)
        _, limits, _ = await cloud.call("GET", "/compute/v2.1/limits")
        assert limits["limits"]["absolute"]["totalInstancesUsed"] == 0


async def test_without_an_interval_delete_is_at_once(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "plain"))["id"]
    code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
    assert code == 204
    await wait_status(cloud, server_id, "DELETED")
