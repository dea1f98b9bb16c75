"""Image bytes between the controller and the agents, over the agent listener's port: the
controller's side.

The controller's routes on that listener are HTTP handlers (cloudd.api.image.agent_routes);
what a host may get or fill is decided here, through ImageAPI (`image_for_host`,
`receive_snapshot`). The agent's side (upload of a snapshot, download of an image) is
cloudd.agent.image_transfer.

A host learns nothing about the images of other hosts' instances: every refusal is the same
ImageNotVisible, whether the image exists or not (the reason goes to the log).
"""

from __future__ import annotations

import logging

from cloudd.compute import instances
from cloudd.db import Database
from cloudd.image import records
from cloudd.image.for_compute import BACKUP_KEY
from cloudd.image.rules import ImageNotVisible

LOG = logging.getLogger(__name__)


async def needed_by_host(db: Database, host_name: str, image_id: str) -> bool:
    """Whether `image_id` boots (or is the kernel/ramdisk of) an instance on `host_name`."""
    used = await instances.images_of_host(db, host_name)
    if image_id in used:
        return True
    for boot_image in sorted(used):
        properties = await records.properties_of(db, boot_image)
        if properties is not None and image_id in (properties.get("kernel_id"),
                                                   properties.get("ramdisk_id")):
            return True
    return False


def _refuse(host_name: str, image_id: str, why: str) -> ImageNotVisible:
    LOG.warning("refused image %s to host %s: %s", image_id, host_name, why)
    return ImageNotVisible(image_id)


async def _image(db: Database, image_id: str) -> records.Image:
    try:
        return await records.get(db, image_id)
    except records.ImageNotFound:
        raise ImageNotVisible(image_id) from None


async def image_for_host(db: Database, host_name: str, image_id: str) -> records.Image:
    """The image a host may download: one its own instances need."""
    if not await needed_by_host(db, host_name, image_id):
        raise _refuse(host_name, image_id, "no instance on that host uses it")
    return await _image(db, image_id)


async def snapshot_for_host(db: Database, host_name: str, image_id: str) -> records.Image:
    """The queued snapshot image a host may fill: a snapshot of an instance on that host."""
    image = await _image(db, image_id)
    properties = image.properties
    if properties.get("image_type") not in ("snapshot", "backup") or image.status != "queued":
        raise _refuse(host_name, image_id, "not a snapshot waiting for its data")
    if not await instances.exists_on_host(db, str(properties.get("instance_uuid")), host_name):
        raise _refuse(host_name, image_id, "a snapshot of an instance on another host")
    return image


async def backup_rotation(db: Database, image: records.Image) -> int | None:
    """The rotation createBackup asked for, if `image` is the backup its server is making
    (recorded by the API in the server's system_metadata; a host has no say in it)."""
    if image.properties.get("image_type") != "backup":
        return None
    try:
        server = await instances.get(db, image.properties.get("instance_uuid", ""))
    except instances.InstanceNotFound:
        return None
    backup = server.system_metadata.get(BACKUP_KEY)
    if not isinstance(backup, dict) or backup.get("image_id") != image.id:
        return None
    rotation = backup.get("rotation")
    return rotation if isinstance(rotation, int) else None
