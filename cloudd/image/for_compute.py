"""What the Compute API asks of the image service: may this server boot this image, the
queued image a snapshot (createImage) or backup (createBackup) will fill, and the rotation of
a server's backups once a new one is in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from cloudd import errors
from cloudd.compute import instances
from cloudd.db import Executor
from cloudd.image import records
from cloudd.objectstore.storage import ObjectStore
from cloudd.rpc.contracts.instance import Instance
from cloudd.vocab import states

GIB = 1024**3
# Base image properties a snapshot does not inherit (they describe the base image's data).
_NOT_INHERITED = frozenset({"image_type", "instance_uuid", "base_image_ref", "owner_project_name",
                            "owner_user_name", "user_id", "image_location"})


# The instance's system_metadata key that holds its backup in progress ({"image_id", "rotation"}):
# set with task_state image_backup, read when the upload is in.
BACKUP_KEY = "backup"


class Backup(BaseModel):
    """createBackup's own arguments: the backup's type (daily, weekly...) and how many backups
    of that type of the server to keep."""

    backup_type: str
    rotation: int


class BootImageError(errors.BadRequest):
    """The image cannot boot this server; the message is Nova's (a 400 for the API)."""


# The EC2 AKI/ARI model: these image properties (and an instance's columns of the same names)
# name the kernel and ramdisk a guest boots directly, and the disk_format each must have.
BOOT_FILE_FORMATS = {"kernel_id": "aki", "ramdisk_id": "ari"}


async def check_boot_files(db: Executor, refs: Mapping[str, object], project_id: str | None) \
        -> dict[str, records.Image]:
    """The images `refs`' kernel_id/ramdisk_id name (absent ones left out), each an active aki
    or ari image that the project may use (Glance's visibility for that project, admin or not:
    the guest is the project's); BootImageError otherwise. Checked at create and again at boot,
    since an image can change in between."""
    found: dict[str, records.Image] = {}
    for key, disk_format in BOOT_FILE_FORMATS.items():
        ref = refs.get(key)
        if ref is None or ref == "":
            continue
        image = await records.find_visible(db, str(ref), project_id, False)
        if image is None:
            raise BootImageError(f"Image {ref} named by {key} could not be found.")
        if image.disk_format != disk_format:
            raise BootImageError(f"Image {ref} named by {key} is not an {disk_format} image "
                                 f"(its disk_format is {image.disk_format}).")
        if image.status != "active":
            raise BootImageError(f"Image {ref} named by {key} is not active.")
        found[key] = image
    return found


async def check_boot_image(db: Executor, image_id: str, project_id: str | None, is_admin: bool,
                           flavor: dict[str, Any]) -> records.Image:
    """The image record if the project can see it, it is active and the flavor is big enough."""
    image = await records.find_visible(db, image_id, project_id, is_admin)
    if image is None:
        raise BootImageError(f"Image {image_id} could not be found.")
    if image.status != "active":
        raise BootImageError(f"Image {image_id} is not active.")
    if flavor["memory_mb"] < image.min_ram:
        raise BootImageError("Flavor's memory is too small for requested image.")
    root_bytes = flavor["root_gb"] * GIB
    if flavor["root_gb"] and image.min_disk * GIB > root_bytes:
        raise BootImageError(
            "Flavor's disk is smaller than the minimum size specified in image metadata. "
            f"Flavor disk is {root_bytes} bytes, minimum size is {image.min_disk * GIB} bytes.")
    if flavor["root_gb"] and (image.size or 0) > root_bytes:
        raise BootImageError(f"Flavor's disk is too small for requested image. Flavor disk is "
                             f"{root_bytes} bytes, image is {image.size} bytes.")
    await check_boot_files(db, image.properties, project_id)
    return image


async def create_snapshot_image(db: Executor, server: Instance, *, name: str,
                                metadata: dict[str, str], user_id: str, user_name: str,
                                project_name: str | None,
                                backup_type: str | None = None) -> records.Image:
    """The queued, private image that the server's snapshot will be uploaded into (Nova's
    compute API create_image: the base image's properties, then the snapshot's own); with
    `backup_type`, a backup (image_type backup) of that type."""
    base: records.Image | None = None
    if server.image_ref:
        try:
            base = await records.get(db, server.image_ref)
        except records.ImageNotFound:
            base = None
    properties = {k: v for k, v in (base.properties if base else {}).items()
                  if k not in _NOT_INHERITED and not k.startswith("owner_specified.")}
    properties.update(metadata)
    if backup_type is not None:
        properties["backup_type"] = backup_type
    properties.update({"image_type": "snapshot" if backup_type is None else "backup",
                       "instance_uuid": server.uuid,
                       "base_image_ref": server.image_ref, "user_id": user_id,
                       "owner_user_name": user_name, "owner_project_name": project_name or ""})
    flavor_root_gb = server.root_gb
    return await records.create(
        db, owner=server.project_id, name=name, visibility="private",
        # What drivers upload, whatever the base was (Nova's libvirt driver says so too): the
        # inspector then refuses anything else in its place.
        disk_format="qcow2", container_format="bare",
        min_ram=base.min_ram if base else 0,
        min_disk=max(flavor_root_gb, base.min_disk if base else 0),
        properties={k: str(v) for k, v in properties.items()})


async def discard_snapshot_image(db: Executor, image_id: str) -> None:
    """The snapshot could not start: its image (still without data) goes away."""
    await records.delete_if_queued(db, image_id)


# How long a snapshot's image may stay queued before its server is asked whether it still
# snapshots: the API creates the image and sets the task state moments apart.
SNAPSHOT_START_GRACE = 60.0


async def discard_failed_snapshots(db: Executor, now: float) -> list[str]:
    """Snapshot and backup images still without data whose server no longer snapshots (its
    snapshot, backup or shelve failed, or the controller died during it) go, as Nova deletes
    the image of a failed snapshot; their ids. A server being deleted or gone: the same."""
    discarded = []
    for image in await records.queued_before(db, now - SNAPSHOT_START_GRACE):
        props = image.properties
        if props.get("image_type") not in ("snapshot", "backup") or "instance_uuid" not in props:
            continue
        try:
            server = await instances.get(db, props["instance_uuid"])
            snapshotting = server.task_state in (*states.SNAPSHOT_TASKS, *states.SHELVE_TASKS)
        except instances.InstanceNotFound:
            snapshotting = False
        if not snapshotting:
            await records.delete_if_queued(db, image.id)
            discarded.append(image.id)
    return discarded


async def rotate_backups(db: Executor, store: ObjectStore, backup: records.Image,
                         rotation: int) -> list[str]:
    """Nova's _rotate_backups once `backup` is in: of the active backups of its server and
    type, the newest `rotation` stay and the others go (all of them for a rotation of 0, as in
    Nova). A protected backup stays. The deleted images' ids."""
    props = backup.properties
    if backup.owner is None:
        return []
    same = [image for image in await records.owned_oldest_first(db, backup.owner)
            if image.status == "active" and image.properties.get("image_type") == "backup"
            and image.properties.get("instance_uuid") == props.get("instance_uuid")
            and image.properties.get("backup_type") == props.get("backup_type")]
    newest_first = sorted(same, key=lambda image: (image.created_at, image.id), reverse=True)
    deleted = []
    for image in newest_first[rotation:]:
        if not image.protected:
            await records.delete(db, store, image.id)
            deleted.append(image.id)
    return deleted
