"""A full disk under the image store (a 1 MiB tmpfs): the upload gets a clear 413, the image stays
queued, nothing half-written is left, and uploads work again once there is room."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import requires
from harness.api import ApiCloud as Cloud
from harness.api import cloud

__all__ = ["cloud"]

IMAGES = "/image/v2/images"


@pytest.fixture
def tiny_store(tmp_path: Path) -> Iterator[Path]:
    """The controller's image store (<state_dir>/glance) on a 1 MiB tmpfs (needs root)."""
    store = tmp_path / "glance"
    store.mkdir(exist_ok=True)
    requires.tmpfs(store, "1m")
    try:
        yield store
    finally:
        subprocess.run(["umount", "-l", str(store)], check=True)


def regular_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def new_image(cloud: Cloud, name: str) -> str:
    status, body, _ = await cloud.call("POST", IMAGES, json={
        "name": name, "disk_format": "raw", "container_format": "bare"})
    assert status == 201, body
    return str(body["id"])


async def upload(cloud: Cloud, image_id: str, data: bytes) -> tuple[int, object]:
    status, body, _ = await cloud.call("PUT", f"{IMAGES}/{image_id}/file", data=data,
                                       headers={"Content-Type": "application/octet-stream"})
    return status, body


async def test_disk_full_during_upload(cloud: Cloud, tiny_store: Path) -> None:
    image_id = await new_image(cloud, "too-big")
    status, body = await upload(cloud, image_id, b"x" * (2 * 1024 * 1024))
    assert status == 413, body
    assert "full" in str(body)
    _, image, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert image["status"] == "queued" and image["size"] is None
    assert regular_files(tiny_store) == []  # no partial file

    # The disk filled by something else: a small upload fails the same way, then works once
    # the space is freed.
    filler = tiny_store / "filler"
    await asyncio.to_thread(filler.write_bytes, b"f" * (1024 * 1024 - 64 * 1024))
    small = bytes(range(256)) * 800  # 200 KiB
    status, body = await upload(cloud, image_id, small)
    assert status == 413, body
    assert regular_files(tiny_store) == ["filler"]
    await asyncio.to_thread(filler.unlink)
    status, body = await upload(cloud, image_id, small)
    assert status == 204, body
    _, image, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert image["status"] == "active" and image["size"] == len(small)
    async with cloud.session.get(f"{cloud.base}{IMAGES}/{image_id}/file",
                                 headers={"X-Auth-Token": cloud.admin_token}) as resp:
        assert resp.status == 200
        assert await resp.read() == small
