"""An upload in progress keeps its image from the stale-upload sweep (it touches the image as
it goes); only one whose uploader stopped is queued again (the kill itself:
tests/faults/test_image_upload_kill.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from harness.api import ApiCloud as Cloud

from cloudd.image import records

from .test_images import IMAGES, create


async def test_a_slow_live_upload_is_not_reset(cloud: Cloud,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "UPLOAD_TOUCH", 0.2)
    image = await create(cloud, name="slow", disk_format="raw", container_format="bare")
    reset: list[str] = []

    async def slow() -> AsyncIterator[bytes]:
        for _ in range(30):  # about 3 s, each chunk after the sweep looked
            reset.extend(await records.reset_stale_uploads(cloud.db, older_than=1.0))
            yield b"y" * 1024
            await asyncio.sleep(0.1)

    code, _, _ = await cloud.call("PUT", f"{IMAGES}/{image['id']}/file", data=slow(),
                                  headers={"Content-Type": "application/octet-stream"})
    assert code == 204 and reset == []
    code, body, _ = await cloud.call("GET", f"{IMAGES}/{image['id']}")
    assert (body["status"], body["size"]) == ("active", 30 * 1024)

    # Left `saving` with nobody touching it (what a killed uploader leaves): queued again.
    other = await create(cloud, name="orphan", disk_format="raw", container_format="bare")
    await records.update(cloud.db, other["id"], {"status": "saving"}, expected_status=["queued"])
    await asyncio.sleep(1.2)
    assert await records.reset_stale_uploads(cloud.db, older_than=1.0) == [other["id"]]
    code, body, _ = await cloud.call("GET", f"{IMAGES}/{other['id']}")
    assert body["status"] == "queued"
