"""Images in server create and snapshot (createImage), on a real agent with the fake driver."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from harness.api import ApiCloud as Cloud
from harness.api import action, wait_status

from .test_images import IMAGES, create, download, upload

S = "/compute/v2.1/servers"


async def boot(cloud: Cloud, image_ref: str, flavor: str = "1", token: str | None = None) \
        -> tuple[int, dict[str, Any]]:
    code, body, _ = await cloud.call("POST", S, token=token, json={"server": {
        "name": "vm", "imageRef": image_ref, "flavorRef": flavor}})
    return code, body


async def test_boot_needs_a_visible_active_big_enough_image(cloud: Cloud) -> None:
    other, _ = await cloud.user_token("other", ("member",))
    private = await create(cloud, name="admins-only", visibility="private", disk_format="raw",
                           container_format="bare")
    assert await upload(cloud, private["id"], b"x" * 100) == 204
    queued = await create(cloud, name="empty", disk_format="raw", container_format="bare")
    greedy = await create(cloud, name="greedy", visibility="public", disk_format="raw",
                          container_format="bare", min_ram=10**6)
    assert await upload(cloud, greedy["id"], b"x") == 204
    for token, image_id in [(other, private["id"]), (None, queued["id"]), (None, greedy["id"]),
                            (None, "00000000-0000-4000-8000-000000000000")]:
        code, body = await boot(cloud, image_id, token=token)
        assert code == 400, body
        assert "badRequest" in body
    code, body = await boot(cloud, private["id"])  # its owner boots it
    assert code == 202, body
    await wait_status(cloud, body["server"]["id"], "ACTIVE")


async def test_snapshot_uploads_the_drivers_disk_into_a_new_image(cloud: Cloud) -> None:
    # A raw base: the snapshot is qcow2 all the same (what drivers upload).
    base = await create(cloud, name="base", visibility="public", disk_format="raw",
                        container_format="bare", os_distro="cirros")
    assert await upload(cloud, base["id"], b"base image bytes") == 204
    code, body = await boot(cloud, base["id"])
    assert code == 202, body
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ACTIVE")

    await action(cloud, server_id, {"createImage": {"name": "snap", "metadata": {"why": "test"}}})
    _, listed, _ = await cloud.call("GET", f"{IMAGES}?name=snap")
    first = listed["images"][0]
    assert (first["owner"], first["visibility"]) == (cloud.admin_project, "private")
    assert first["why"] == "test"
    await _wait_active(cloud, first["id"])
    await _wait_task_done(cloud, server_id)
    # From 2.45 the image id comes in the body (below, its URL in Location: next test).
    code, resp, _ = await cloud.call("POST", f"{S}/{server_id}/action", version="2.45",
                                     json={"createImage": {"name": "snap2"}})
    assert code == 202, resp
    snapshot_ids = [first["id"], resp["image_id"]]
    for image_id in snapshot_ids:
        image = await _wait_active(cloud, image_id)
        assert image["image_type"] == "snapshot" and image["instance_uuid"] == server_id
        assert image["base_image_ref"] == base["id"] and image["os_distro"] == "cirros"
        assert image["disk_format"] == "qcow2"
        code, data, _ = await download(cloud, image_id)
        assert data.startswith(b"QFI\xfb")  # a qcow2 header, then the fake's text
        assert data[512:].startswith(f"cloudd fake disk image\ninstance={server_id}\n"
                               f"base_image={base['id']}\n".encode())
        assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None


async def test_create_image_location_below_245_and_bad_bodies(cloud: Cloud) -> None:
    base = await create(cloud, name="b", visibility="public", disk_format="raw",
                        container_format="bare")
    assert await upload(cloud, base["id"], b"b") == 204
    _, body = await boot(cloud, base["id"])
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ACTIVE")
    for bad in ({}, {"name": ""}, {"name": "x", "metadata": {"k": 1}}, {"name": "x", "y": 1}):
        await action(cloud, server_id, {"createImage": bad}, expect=400)
    _, headers = await action(cloud, server_id, {"createImage": {"name": "loc"}})
    location = headers["Location"]
    assert location.startswith(f"{cloud.base}/image/v2/images/")
    await _wait_active(cloud, location.rsplit("/", 1)[-1])


async def _wait_task_done(cloud: Cloud, server_id: str) -> None:
    for _ in range(200):
        _, body, _ = await cloud.call("GET", f"{S}/{server_id}")
        if body["server"]["OS-EXT-STS:task_state"] is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"server {server_id} is still busy")


async def _wait_active(cloud: Cloud, image_id: str) -> dict[str, Any]:
    for _ in range(200):
        code, image, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
        assert code == 200
        if image["status"] == "active":
            return dict(image)
        await asyncio.sleep(0.05)
    raise AssertionError(f"image {image_id} never became active: {image}")
