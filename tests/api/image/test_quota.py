"""Glance's image quotas per project (image_size_total in MiB, image_count_total): uploads and
creates past them are 413, a failed upload leaves the image queued, and /v2/info/usage shows
limits and usage as Glance does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from harness.api import ApiCloud as Cloud

from cloudd.compute import quota

from .test_images import IMAGES, create, upload

KIB = 1024


async def test_image_quotas_refuse_with_413(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("imagequota", ("member",))
    await quota.set_limits(cloud.db, project_id, {"image_size_total": 1, "image_count_total": 3},
                           time.time())
    first = await create(cloud, token, name="first", disk_format="raw", container_format="bare")
    assert await upload(cloud, first["id"], b"1" * 700 * KIB, token) == 204
    second = await create(cloud, token, name="second", disk_format="raw", container_format="bare")
    # Declared larger than what is left: refused before the body is read...
    assert await upload(cloud, second["id"], b"2" * 400 * KIB, token) == 413
    # ...and streamed without a length: cut off where the quota ends.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"s" * 10 * KIB

    code, body, _ = await cloud.call("PUT", f"{IMAGES}/{second['id']}/file", token=token,
                                     data=chunks(),
                                     headers={"Content-Type": "application/octet-stream"})
    assert code == 413 and "image_size_total" in str(body)
    _, shown, _ = await cloud.call("GET", f"{IMAGES}/{second['id']}", token=token)
    assert shown["status"] == "queued" and shown["size"] is None  # can be retried
    assert await upload(cloud, second["id"], b"2" * 300 * KIB, token) == 204

    await create(cloud, token, name="third", disk_format="raw", container_format="bare")
    code, body, _ = await cloud.call("POST", IMAGES, token=token, json={"name": "fourth"})
    assert code == 413 and "image_count_total" in str(body)

    code, usage, _ = await cloud.call("GET", "/image/v2/info/usage", token=token)
    assert code == 200
    assert usage["usage"]["image_size_total"] == {"limit": 1, "usage": 1}
    assert usage["usage"]["image_count_total"] == {"limit": 3, "usage": 3}
    assert usage["usage"]["image_count_uploading"]["usage"] == 0
    # The admin's project has its own, default, quota.
    code, admin_usage, _ = await cloud.call("GET", "/image/v2/info/usage")
    assert admin_usage["usage"]["image_size_total"]["limit"] == 100 * 1024
