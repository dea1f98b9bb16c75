"""At boot the conductor checks again the kernel and ramdisk an image names (kernel_id and
ramdisk_id): between the create and the build the image may have changed, so a build must not
pick up an image the project may not use, of the wrong kind, or no longer active."""

from __future__ import annotations

import uuid
from typing import Any

from harness.cloud import Cloud

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.frontdoor.compute import BuildRequest
from cloudd.image import records


async def _image(cloud: Cloud, owner: str, disk_format: str, visibility: str = "private",
                 status: str = "active", **properties: str) -> str:
    image = await records.create(cloud.db, owner=owner, name=disk_format, visibility=visibility,
                                 disk_format=disk_format, container_format="bare",
                                 properties=properties)
    await records.update(cloud.db, image.id, {"status": status, "size": 0})
    return str(image.id)


async def _boot(cloud: Cloud, image_ref: str) -> str:
    """One server of project p1 from `image_ref`, through ComputeAPI.create, which (unlike the
    REST API) does not check the image: what the conductor does at boot is all there is."""
    request = BuildRequest(name="vm", flavor=await cloud.flavor(), project_id="p1",
                           user_id="u1", image_ref=image_ref, min_count=1, max_count=1)
    rows = await cloud.api.create(request, f"req-{uuid.uuid4()}")
    return rows[0].uuid


async def _boot_refused(cloud: Cloud, **properties: str) -> dict[str, Any]:
    image = await _image(cloud, "p1", "raw", **properties)
    row = await cloud.wait_state(await _boot(cloud, image), "error")
    assert row["host"] is None and row["node"] is None  # the claim went back
    assert row["uuid"] not in await cloud.agent.driver.list_instances()
    fault = await cloud.db.fetchrow("SELECT * FROM instance_faults WHERE instance_uuid = $1",
                                    row["uuid"])
    assert fault is not None
    return fault


async def test_another_projects_private_ramdisk_is_refused_at_boot(cloud: Cloud) -> None:
    foreign = await _image(cloud, "p2", "ari")
    fault = await _boot_refused(cloud, ramdisk_id=foreign)
    assert f"Image {foreign} named by ramdisk_id could not be found" in fault["message"]


async def test_wrong_kind_or_inactive_boot_files_are_refused_at_boot(cloud: Cloud) -> None:
    disk = await _image(cloud, "p1", "qcow2")
    fault = await _boot_refused(cloud, kernel_id=disk)
    assert "is not an aki image (its disk_format is qcow2)" in fault["message"]
    deactivated = await _image(cloud, "p1", "ari", status="deactivated")
    fault = await _boot_refused(cloud, ramdisk_id=deactivated)
    assert f"Image {deactivated} named by ramdisk_id is not active" in fault["message"]


async def test_usable_boot_files_reach_the_driver(cloud: Cloud) -> None:
    kernel = await _image(cloud, "p1", "aki")
    ramdisk = await _image(cloud, "p2", "ari", visibility="public")
    image = await _image(cloud, "p1", "raw", kernel_id=kernel, ramdisk_id=ramdisk)
    server = await _boot(cloud, image)
    await cloud.wait_state(server, "active")
    driver = cloud.agent.driver
    assert isinstance(driver, FakeDriver)
    spec = driver._guests[server].spec
    assert spec.kernel is not None and spec.ramdisk is not None
    assert (spec.kernel.id, spec.kernel.disk_format) == (kernel, "aki")
    assert (spec.ramdisk.id, spec.ramdisk.disk_format) == (ramdisk, "ari")
