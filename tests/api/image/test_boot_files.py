"""kernel_id / ramdisk_id at server create (Compute API): they must name active aki/ari images
the project may use; another project's private ramdisk, or a disk image as a ramdisk, is 400."""

from __future__ import annotations

from typing import Any

from .conftest import Cloud
from .test_images import create, upload
from .test_servers_and_snapshots import boot


async def _active(cloud: Cloud, token: str, disk_format: str, visibility: str = "private",
                  **properties: Any) -> str:
    image = await create(cloud, token=token, name=disk_format, disk_format=disk_format,
                         container_format="bare", visibility=visibility, **properties)
    assert await upload(cloud, image["id"], b"\x7fELF raw boot file bytes", token=token) == 204
    return str(image["id"])


async def test_boot_files_must_be_usable_aki_ari_images(cloud: Cloud) -> None:
    owner, _ = await cloud.user_token("ramdisk-owner", ("member",))
    tenant, _ = await cloud.user_token("tenant", ("member",))
    foreign_ramdisk = await _active(cloud, owner, "ari")
    own_kernel = await _active(cloud, tenant, "aki")
    own_ramdisk = await _active(cloud, tenant, "ari")
    public_disk = await _active(cloud, cloud.admin_token, "raw", visibility="public")

    cases = [
        ({"ramdisk_id": foreign_ramdisk},
         f"Image {foreign_ramdisk} named by ramdisk_id could not be found."),
        ({"ramdisk_id": public_disk},
         f"Image {public_disk} named by ramdisk_id is not an ari image (its disk_format is raw)."),
        ({"kernel_id": own_ramdisk},
         f"Image {own_ramdisk} named by kernel_id is not an aki image (its disk_format is ari)."),
        ({"kernel_id": "no-such-image"}, "Image no-such-image named by kernel_id could not be found."),
    ]
    for properties, message in cases:
        image = await _active(cloud, tenant, "raw", **properties)
        code, body = await boot(cloud, image, token=tenant)
        assert (code, body) == (400, {"badRequest": {"code": 400, "message": message}}), properties
    _, servers, _ = await cloud.call("GET", "/compute/v2.1/servers", token=tenant)
    assert servers["servers"] == []

    image = await _active(cloud, tenant, "raw", kernel_id=own_kernel, ramdisk_id=own_ramdisk)
    code, body = await boot(cloud, image, token=tenant)
    assert code == 202, body
