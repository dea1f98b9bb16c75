"""Uploads are inspected: an image whose header names a host file, or whose content is not its
disk_format, is refused with 400 and leaves no bytes; good images still upload and boot."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from crafted_images import CRAFTED, make_image
from harness.api import ApiCloud as Cloud
from harness.api import wait_status

from cloudd.image.data import import_image
from cloudd.image.inspector import ImageUnacceptable
from cloudd.image.records import BUCKET

from .test_images import IMAGES, create, download, store_of, upload
from .test_servers_and_snapshots import boot


async def _tenant_uploads(cloud: Cloud, tmp_path: Path, kind: str, disk_format: str) \
        -> tuple[int, dict[str, Any], str]:
    token, _ = await cloud.user_token("tenant", ("member",))
    path = await asyncio.to_thread(make_image, kind, tmp_path)
    image = await create(cloud, token=token, name=kind, disk_format=disk_format,
                         container_format="bare")
    code, body, _ = await cloud.call("PUT", f"{IMAGES}/{image['id']}/file", token=token,
                                     data=path.read_bytes(),
                                     headers={"Content-Type": "application/octet-stream"})
    return code, body, image["id"]


@pytest.mark.parametrize("kind", sorted(CRAFTED))
@pytest.mark.parametrize("declared", ["qcow2", "raw", "vmdk"])
async def test_images_naming_host_files_are_refused(cloud: Cloud, tmp_path: Path, kind: str,
                                                    declared: str) -> None:
    code, body, image_id = await _tenant_uploads(cloud, tmp_path, kind, declared)
    assert code == 400, body
    assert body["code"] == 400 and image_id in body["message"]
    reason = body["message"].lower()
    assert ("safety check" in reason if declared == CRAFTED[kind] else
            f"does not match its disk_format {declared}" in reason), reason
    _, shown, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert (await download(cloud, image_id))[0] == 204
    assert not await store_of(tmp_path).exists(BUCKET, image_id)


@pytest.mark.parametrize(("kind", "declared"), [("qcow2", "raw"), ("raw", "qcow2"),
                                                ("vmdk", "qcow2"), ("qcow2", "aki")])
async def test_content_must_be_the_declared_format(cloud: Cloud, tmp_path: Path, kind: str,
                                                   declared: str) -> None:
    code, body, image_id = await _tenant_uploads(cloud, tmp_path, kind, declared)
    assert code == 400 and "does not match" in body["message"], body
    _, shown, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert shown["status"] == "queued"
    assert not await store_of(tmp_path).exists(BUCKET, image_id)
    # The same image takes good data afterwards: a refusal only discards what was sent.
    good_kind = "raw" if declared == "aki" else declared
    (tmp_path / "good").mkdir()
    good = await asyncio.to_thread(make_image, good_kind, tmp_path / "good")
    assert await upload(cloud, image_id, good.read_bytes()) == 204


@pytest.mark.parametrize("kind", ["qcow2", "raw", "vmdk"])
async def test_good_images_upload_and_boot(cloud: Cloud, tmp_path: Path, kind: str) -> None:
    code, body, image_id = await _tenant_uploads(cloud, tmp_path, kind, kind)
    assert code == 204, body
    _, shown, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert shown["status"] == "active"
    code, server = await boot(cloud, image_id)
    assert code == 202, server
    await wait_status(cloud, server["server"]["id"], "ACTIVE")


async def test_manage_import_refuses_and_keeps_nothing(cloud: Cloud, tmp_path: Path) -> None:
    crafted = await asyncio.to_thread(make_image, "qcow2-data-file", tmp_path)
    with pytest.raises(ImageUnacceptable, match="data_file"):
        await import_image(cloud.db, store_of(tmp_path), crafted, "evil", disk_format="qcow2")
    _, listed, _ = await cloud.call("GET", f"{IMAGES}?name=evil")
    assert listed["images"] == []
