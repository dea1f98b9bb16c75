"""kill -9 of `cloudd serve` in the middle of an image upload: no half image is ever active or
downloadable, the image goes back to queued once its uploader is known gone (a restarted
controller's sweep), and the same image can then be uploaded in full."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from harness.cloud import wait_for
from harness.processes import Processes

from cloudd.controller import build_controller
from cloudd.db import connect
from cloudd.image import records

CHUNK = b"x" * 65536


async def slow_body(sent: list[int]) -> AsyncIterator[bytes]:
    for _ in range(10_000):  # 640 MiB at most: the kill comes long before
        sent[0] += len(CHUNK)
        yield CHUNK
        await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_controller_killed_mid_upload(processes: Processes,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    procs = processes
    await procs.start_cloud()
    code, image = await procs.call("POST", "/image/v2/images", json={
        "name": "half", "disk_format": "raw", "container_format": "bare"})
    assert code == 201, image
    image_id = image["id"]
    sent = [0]
    upload = asyncio.create_task(procs.call(
        "PUT", f"/image/v2/images/{image_id}/file", data=slow_body(sent),
        headers={"Content-Type": "application/octet-stream"}))
    db = await connect(procs.db_url)
    try:
        async def saving() -> bool:
            status = await db.fetchval("SELECT status FROM images WHERE id = $1", image_id)
            return bool(status == "saving" and sent[0] > 2 * 1024 * 1024)

        await wait_for(saving, 30, "the upload to be under way")
        procs.kill(procs.controller)
        with contextlib.suppress(aiohttp.ClientError):
            await upload
        assert await db.fetchval("SELECT status FROM images WHERE id = $1",
                                 image_id) == "saving"
    finally:
        await db.close()

    # The restarted controller (in this process) finds the upload untouched past the bound.
    monkeypatch.setattr(records, "STALE_UPLOAD", 0.5)
    controller = build_controller(procs.config)
    await controller.start()
    try:
        async def queued() -> bool:
            code, body = await procs.call("GET", f"/image/v2/images/{image_id}")
            return bool(code == 200 and body["status"] == "queued")

        await wait_for(queued, 20, "the stale upload to be queued again")
        code, body = await procs.call("GET", f"/image/v2/images/{image_id}")
        assert body["size"] is None and body["checksum"] is None  # nothing of the half
        code, _ = await procs.call("GET", f"/image/v2/images/{image_id}/file")
        assert code in (204, 404)  # no data to download
        data = b"whole image " * 1000
        code, _ = await procs.call("PUT", f"/image/v2/images/{image_id}/file", data=data,
                                   headers={"Content-Type": "application/octet-stream"})
        assert code == 204
        code, body = await procs.call("GET", f"/image/v2/images/{image_id}")
        assert (body["status"], body["size"]) == ("active", len(data))
        assert body["checksum"] == hashlib.md5(data).hexdigest()  # Glance's checksum
    finally:
        await controller.stop()
