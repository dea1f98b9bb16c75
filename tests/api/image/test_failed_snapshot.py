"""A snapshot that fails on its host leaves no image behind (Nova deletes it): the
controller's periodic sweep deletes a snapshot's image that is still without data once its
server no longer snapshots; one still being taken, and any other queued image, stay."""

from __future__ import annotations

import asyncio

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import active_server

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.service import AgentService
from cloudd.image import for_compute
from cloudd.image.api import ImageAPI

S = "/compute/v2.1/servers"
IMAGES = "/image/v2/images"


def driver(cloud: Cloud) -> FakeDriver:
    fake = cloud.host.get(AgentService).driver
    assert isinstance(fake, FakeDriver)
    return fake


async def snapshot(cloud: Cloud, server_id: str, name: str) -> str:
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", version="2.45",
                                     json={"createImage": {"name": name}})
    assert code == 202, body
    return str(body["image_id"])


async def task_state(cloud: Cloud, server_id: str) -> str | None:
    _, body, _ = await cloud.call("GET", f"{S}/{server_id}")
    return body["server"]["OS-EXT-STS:task_state"]  # type: ignore[no-any-return]


async def test_failed_snapshot_image_is_deleted(cloud: Cloud,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(for_compute, "SNAPSHOT_START_GRACE", 0.0)
    server_id = (await active_server(cloud, "snap-fails"))["id"]
    code, plain, _ = await cloud.call("POST", IMAGES, json={
        "name": "plain", "disk_format": "qcow2", "container_format": "bare"})
    assert code == 201  # queued, no data: not a snapshot, never swept

    driver(cloud).fail["snapshot"] = 1.0
    failed = await snapshot(cloud, server_id, "broken")
    for _ in range(100):
        if await task_state(cloud, server_id) is None:
            break
        await asyncio.sleep(0.05)
    assert (await cloud.call("GET", f"{IMAGES}/{failed}"))[1]["status"] == "queued"

    driver(cloud).fail.pop("snapshot")
    driver(cloud).delays["snapshot"] = 3.0
    busy_id = (await active_server(cloud, "snap-slow"))["id"]
    running = await snapshot(cloud, busy_id, "in-progress")
    assert await task_state(cloud, busy_id) == "image_snapshot"
    await ImageAPI(cloud.host).reset_stale_uploads()
    assert (await cloud.call("GET", f"{IMAGES}/{failed}"))[0] == 404  # its snapshot failed
    assert (await cloud.call("GET", f"{IMAGES}/{running}"))[0] == 200  # being taken: kept
    assert (await cloud.call("GET", f"{IMAGES}/{plain['id']}"))[0] == 200
