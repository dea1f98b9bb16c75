"""Lock with a reason (2.73): the action's body, `locked_reason` in the views, and the server
list's `locked` filter, on a cloud configured to advertise 2.73."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import BOOT_IMAGE, running_cloud, wait_status
from harness.api import ApiCloud as Cloud

S = "/compute/v2.1/servers"


@pytest.fixture
async def cloud273(tmp_path: Path, unreleased_microversions: None) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path, api={"max_microversion": "2.73"}) as running:
        yield running


async def active_server(cloud: Cloud, name: str) -> str:
    code, body, _ = await cloud.call("POST", S, json={"server": {
        "name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert code == 202, body
    await wait_status(cloud, body["server"]["id"], "ACTIVE")
    return str(body["server"]["id"])


async def act(cloud: Cloud, server_id: str, body: Any, version: str = "2.73") -> tuple[int, Any]:
    code, answer, _ = await cloud.call("POST", f"{S}/{server_id}/action", version=version,
                                       json=body)
    return code, answer


async def test_lock_with_reason_shows_in_the_views(cloud273: Cloud) -> None:
    cloud = cloud273
    server_id = await active_server(cloud, "locked-vm")
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.73")
    assert body["server"]["locked"] is False and body["server"]["locked_reason"] is None
    assert (await act(cloud, server_id, {"lock": {"locked_reason": "maintenance"}}))[0] == 202
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.73")
    assert body["server"]["locked"] is True
    assert body["server"]["locked_reason"] == "maintenance"
    code, body, _ = await cloud.call("GET", f"{S}/detail", version="2.73")
    assert body["servers"][0]["locked_reason"] == "maintenance"
    code, body, _ = await cloud.call("PUT", f"{S}/{server_id}", version="2.73",
                                     json={"server": {"name": "renamed"}})
    assert body["server"]["locked_reason"] == "maintenance"
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.72")
    assert "locked_reason" not in body["server"]
    assert (await act(cloud, server_id, {"unlock": None}))[0] == 202
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.73")
    assert body["server"]["locked"] is False and body["server"]["locked_reason"] is None
    assert (await act(cloud, server_id, {"lock": None}))[0] == 202  # no reason at all
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.73")
    assert code == 200
    assert body["server"]["locked"] is True and body["server"]["locked_reason"] is None


@pytest.mark.parametrize(("args", "version"), [
    ({"locked_reason": "r"}, "2.72"),  # from 2.73
    ({"locked_reason": "r"}, "2.1"),
    ({"locked_reason": ""}, "2.73"),
    ({"locked_reason": "x" * 256}, "2.73"),
    ({"locked_reason": 5}, "2.73"),
    ({"locked_reason": None}, "2.73"),
    ({"reason": "r"}, "2.73"),
    ("r", "2.73"),
])
async def test_bad_lock_bodies(cloud273: Cloud, args: Any, version: str) -> None:
    server_id = await active_server(cloud273, "vm")
    code, body = await act(cloud273, server_id, {"lock": args}, version)
    assert code == 400 and list(body) == ["badRequest"], (args, body)


async def test_longest_reason(cloud273: Cloud) -> None:
    server_id = await active_server(cloud273, "vm")
    code, body = await act(cloud273, server_id, {"lock": {"locked_reason": "x" * 255}})
    assert code == 202, body


async def test_list_filters_on_locked(cloud273: Cloud) -> None:
    cloud = cloud273
    locked_id = await active_server(cloud, "locked")
    open_id = await active_server(cloud, "open")
    assert (await act(cloud, locked_id, {"lock": {"locked_reason": "why"}}))[0] == 202

    async def listed(query: str, version: str = "2.73") -> set[str]:
        code, body, _ = await cloud.call("GET", f"{S}?{query}", version=version)
        assert code == 200, body
        return {s["id"] for s in body["servers"]}

    assert await listed("locked=true") == {locked_id}
    assert await listed("locked=False") == {open_id}
    assert await listed("locked=1&name=lock") == {locked_id}
    assert await listed("locked=true", version="2.72") == {locked_id, open_id}
    assert await listed("locked=true&name=open", version="2.72") == {open_id}
    code, body, _ = await cloud.call("GET", f"{S}/detail?locked=maybe", version="2.73")
    assert code == 400 and list(body) == ["badRequest"]
