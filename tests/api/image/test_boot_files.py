"""kernel_id / ramdisk_id at server create (Compute API): they must name active aki/ari images
the project may use; another project's private ramdisk, or a disk image as a ramdisk, is 400."""

from __future__ import annotations

from typing import Any

from harness.api import ApiCloud as Cloud
from harness.api import wait_status

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


async def test_rebuild_takes_only_an_image_the_project_may_boot(cloud: Cloud) -> None:
    """Rebuild resolves its image as create does: another project's private image, or a disk
    image naming a foreign ramdisk, is 400 and the server keeps its image; a usable one is
    recorded and the server comes back ACTIVE on it."""
    owner, _ = await cloud.user_token("rebuild-owner", ("member",))
    tenant, _ = await cloud.user_token("rebuild-tenant", ("member",))
    first = await _active(cloud, tenant, "raw")
    code, body = await boot(cloud, first, token=tenant)
    assert code == 202, body
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ACTIVE")
    foreign = await _active(cloud, owner, "raw")
    foreign_ramdisk = await _active(cloud, owner, "ari")
    naming_foreign = await _active(cloud, tenant, "raw", ramdisk_id=foreign_ramdisk)
    path = f"/compute/v2.1/servers/{server_id}/action"
    for image, message in [
        (foreign, f"Image {foreign} could not be found."),
        (naming_foreign, f"Image {foreign_ramdisk} named by ramdisk_id could not be found."),
    ]:
        code, body, _ = await cloud.call("POST", path, token=tenant,
                                         json={"rebuild": {"imageRef": image}})
        assert (code, body) == (400, {"badRequest": {"code": 400, "message": message}})
    _, shown, _ = await cloud.call("GET", f"/compute/v2.1/servers/{server_id}", token=tenant)
    assert shown["server"]["image"]["id"] == first
    assert shown["server"]["OS-EXT-STS:task_state"] is None

    second = await _active(cloud, tenant, "raw")
    code, body, _ = await cloud.call("POST", path, token=tenant,
                                     json={"rebuild": {"imageRef": second}})
    assert code == 202, body
    rebuilt = await wait_status(cloud, server_id, "ACTIVE")
    assert rebuilt["image"]["id"] == second
