"""The image domain's front door (Glance's image API, without HTTP): what the Image API v2
handlers, the EC2 image calls and the agent listener's image routes call.

It owns who may see, create, change and delete an image (rules.py), an image's creation with
its defaults, updates (an `ImagePatch`'s changes), deletion, the data's state transitions
(queued -> saving -> active, back to queued on a failed or refused upload) under the size cap
and the project's quotas, the bytes a download streams, and EC2's bundle registration. Its
refusals are the domain errors of rules.py (kinds of cloudd.errors), which each API renders:
the Image API by their status and message, the EC2 API as its own codes.

It takes and returns image records (`cloudd.image.records.Image`), decoded once by the
repository.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from multidict import MultiMapping

from cloudd.core import ServiceHost
from cloudd.db import DuplicateError, IntegrityError
from cloudd.db.service import OnHost
from cloudd.image import bundles, filters, for_compute, listing, quota, records, transfer
from cloudd.image.inspector import ImageUnacceptable
from cloudd.image.quota import ImageQuotaUsage
from cloudd.image.records import Image
from cloudd.image.rules import (
    Caller,
    ImageChanges,
    ImageConflict,
    ImageForbidden,
    ImageGone,
    ImageNotVisible,
    ImageProtected,
    ImageRefused,
    ImageStoreUnavailable,
    ImageTooLarge,
    NewImage,
    NotImageOwner,
    can_create,
    can_read,
    can_write,
    check_property,
    check_publicize,
    is_uuid,
)
from cloudd.objectstore.storage import (
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectTooLarge,
    StorageError,
    StorageFull,
)

# Statuses of an image on its way out: EC2 no longer shows them.
_GOING = ("deleted", "pending_delete")


@dataclass
class ImageData:
    """An image's bytes, opened for a download (the reader streams them off the loop)."""

    reader: ObjectReader
    checksum: str | None


def require_read(caller: Caller, verb: str = "read") -> None:
    if not can_read(caller):
        raise ImageForbidden(f"You are not authorized to {verb} images.")


def require_create(caller: Caller) -> None:
    if not can_create(caller):
        raise ImageForbidden("You are not authorized to create images.")


LOG = logging.getLogger(__name__)


class ImageAPI(OnHost):
    def __init__(self, host: ServiceHost, size_cap: int = records.IMAGE_SIZE_CAP) -> None:
        super().__init__(host)
        self.size_cap = size_cap  # Glance's image_size_cap

    @property
    def store(self) -> ObjectStore:
        return records.image_store(self.host.config)

    # ----- reading ------------------------------------------------------------------------------
    async def get(self, caller: Caller, image_id: str) -> Image:
        """The image if the caller may see it; ImageNotVisible otherwise (a name, an
        invisible image of another project)."""
        require_read(caller)
        if not is_uuid(image_id):
            raise ImageNotVisible(image_id)
        image = await records.find_visible(self.db, image_id.lower(), caller.project_id,
                                           caller.is_admin)
        if image is None:
            raise ImageNotVisible(image_id)
        return image

    async def get_to_change(self, caller: Caller, image_id: str) -> Image:
        image = await self.get(caller, image_id)
        if not can_write(caller, image):
            raise ImageForbidden(f"You are not permitted to modify image {image.id}.")
        return image

    async def page(self, caller: Caller, query: MultiMapping[str], *, visibility: str | None,
                   order: list[tuple[str, bool]], limit: int,
                   marker_id: str | None) -> tuple[list[Image], bool]:
        """(up to `limit` images the caller may see after the marker that match the query's
        filters, whether more follow); the marker must be an image the caller sees."""
        require_read(caller, "list")
        marker = await self._marker(caller, marker_id)
        return await listing.page(
            self.db, project_id=caller.project_id, is_admin=caller.is_admin, query=query,
            visibility=visibility, order=order, limit=limit, marker=marker,
            keep=lambda image: filters.matches(image, query, visibility, caller.project_id))

    async def _marker(self, caller: Caller, image_id: str | None) -> Image | None:
        if image_id is None:
            return None
        try:
            marker: Image | None = await records.get(self.db, image_id)
        except records.ImageNotFound:
            marker = None
        if marker is None or not await records.is_visible(self.db, marker, caller.project_id,
                                                          caller.is_admin):
            raise ImageRefused(f"marker {image_id} could not be found")
        return marker

    async def usage(self, project_id: str) -> ImageQuotaUsage:
        return await quota.usage(self.db, project_id)

    # ----- create, update, delete ---------------------------------------------------------------
    async def create(self, caller: Caller, new: NewImage) -> Image:
        """A queued image (no data yet), the caller's project's unless an admin names another
        owner; ImageTooLarge past the owner's image_count_total."""
        require_create(caller)
        for key, value in new.properties.items():
            check_property(key, value)
        check_publicize(caller, new.visibility)
        if new.id is not None and not is_uuid(new.id):
            raise ImageRefused(f"Image id {new.id} is not a UUID.")
        if new.owner is not None and new.owner != caller.project_id and not caller.is_admin:
            raise ImageForbidden("You are not permitted to create images owned by another "
                                 "project.")
        owner = new.owner or caller.project_id
        await quota.check_image_count(self.db, owner)
        try:
            return await records.create(
                self.db, owner=owner, name=new.name, visibility=new.visibility,
                disk_format=new.disk_format, container_format=new.container_format,
                min_disk=new.min_disk, min_ram=new.min_ram, protected=new.protected,
                os_hidden=new.os_hidden, tags=list(dict.fromkeys(new.tags)),
                properties=new.properties, image_id=new.id.lower() if new.id else None)
        except (DuplicateError, IntegrityError):
            raise ImageConflict(f"An image with identifier {new.id} already exists") from None

    async def update(self, image: Image, changes: ImageChanges) -> Image:
        """Save an ImagePatch's changes of `image` (which get_to_change gave). A protected
        image may still change its metadata (as in Glance); only delete is refused."""
        if not changes:
            return image
        try:
            return await records.update(self.db, image.id, changes.values())
        except records.ImageNotFound:
            raise ImageConflict(f"Image {image.id} was deleted meanwhile") from None

    async def delete(self, caller: Caller, image_id: str) -> None:
        image = await self.get_to_change(caller, image_id)
        self._not_protected(image)
        if image.status == "saving":
            raise ImageConflict(f"Image {image.id} is being uploaded; try again when it is "
                                "done.")
        await records.delete(self.db, self.store, image.id)

    def _not_protected(self, image: Image) -> None:
        if image.protected:
            raise ImageProtected(f"Image {image.id} is protected and cannot be deleted.")

    # ----- data ---------------------------------------------------------------------------------
    async def upload(self, caller: Caller, image_id: str, chunks: AsyncIterator[bytes],
                     declared_size: int | None) -> Image:
        """A queued image's data, under the size cap and the owner's image_size_total."""
        image = await self.get_to_change(caller, image_id)
        if image.status != "queued":
            raise ImageConflict(f"Image {image.id} is {image.status}: data can only be "
                                "uploaded to a queued image.")
        cap, metered = await quota.bounded_upload(self.db, image, self.size_cap, chunks)
        return await self._receive(image.id, metered, declared_size, cap)

    async def download(self, caller: Caller, image_id: str) -> ImageData | None:
        """The image's bytes (None: it has none yet); deactivated images only for admins."""
        image = await self.get(caller, image_id)
        if image.status == "deactivated" and not caller.is_admin:
            raise ImageForbidden(f"Image {image.id} is deactivated.")
        return await self.open_data(image)

    async def open_data(self, image: Image) -> ImageData | None:
        """An active (or deactivated) image's bytes; None when it has none."""
        if image.status not in ("active", "deactivated") or image.size is None:
            return None
        try:
            reader = await self.store.open_read(records.BUCKET, image.id)
        except ObjectNotFound:
            raise ImageStoreUnavailable(
                f"The data of image {image.id} is missing from the store") from None
        return ImageData(reader, image.checksum or None)

    async def _receive(self, image_id: str, chunks: AsyncIterator[bytes],
                       declared_size: int | None, cap: int) -> Image:
        """Store an upload; its refusals as the domain's (409, 410, 400, 413, 503)."""
        if declared_size is not None and declared_size > cap:
            raise ImageTooLarge(f"Image exceeds the storage quota: {declared_size} > {cap} "
                                "bytes")
        try:
            return await records.store_data(self.db, self.store, image_id, chunks, max_size=cap)
        except records.ImageStateConflict as exc:
            raise ImageConflict(f"Image {image_id} cannot take data now: {exc}") from None
        except records.ImageNotFound:
            raise ImageGone(f"Image {image_id} was deleted during the upload.") from None
        except ImageUnacceptable as exc:  # Glance: 400, the image stays queued
            raise ImageRefused(f"Image {image_id} refused: {exc}") from None
        except ObjectTooLarge:
            raise ImageTooLarge(f"Image exceeds the storage quota of {cap} bytes") from None
        except StorageFull:
            raise ImageTooLarge("Image storage media is full.") from None
        except StorageError as exc:
            raise ImageStoreUnavailable(f"Image storage failed: {exc}") from None

    async def reset_stale_uploads(self) -> None:
        """Uploads whose uploader died (a controller killed mid-upload): back to queued; and
        snapshots that will never be uploaded (their snapshot failed) are deleted."""
        for image_id in await records.reset_stale_uploads(self.db):
            LOG.warning("image %s: its upload stopped without an end (uploader gone); it is "
                        "queued again and may be uploaded anew", image_id)
        for image_id in await for_compute.discard_failed_snapshots(self.db, time.time()):
            LOG.warning("image %s: its server's snapshot ended without its data; deleted",
                        image_id)

    # ----- the agents' transfers (cloudd.image.transfer decides what a host may) ----------------
    async def data_for_host(self, host_name: str, image_id: str) -> ImageData | None:
        return await self.open_data(await transfer.image_for_host(self.db, host_name, image_id))

    async def receive_snapshot(self, host_name: str, image_id: str,
                               chunks: AsyncIterator[bytes], declared_size: int | None) -> None:
        """A snapshot's bytes from the host of its instance (the image size cap, no quota:
        the snapshot's image was counted when it was made)."""
        image = await transfer.snapshot_for_host(self.db, host_name, image_id)
        stored = await self._receive(image.id, chunks, declared_size, records.IMAGE_SIZE_CAP)
        rotation = await transfer.backup_rotation(self.db, stored)
        if rotation is not None:  # a backup is in: the oldest of its kind beyond rotation go
            await for_compute.rotate_backups(self.db, self.store, stored, rotation)

    # ----- EC2 ----------------------------------------------------------------------------------
    async def visible_to(self, project_id: str) -> list[Image]:
        """The images the project may see (own, public, community, shared with it) as a
        project member, oldest first, without those being deleted."""
        return [image for image in await records.all_oldest_first(self.db)
                if image.status not in _GOING
                and await records.is_visible(self.db, image, project_id, False)]

    async def find_visible(self, project_id: str, image_id: str) -> Image | None:
        return await records.find_visible(self.db, image_id, project_id, False)

    async def get_owned(self, caller: Caller, project_id: str, image_id: str) -> Image:
        """An image the project sees and may change: its own (or any it sees, for admins)."""
        image = await self.find_visible(project_id, image_id)
        if image is None or image.status in _GOING:
            raise ImageNotVisible(image_id)
        if image.owner != project_id and not caller.is_admin:
            raise NotImageOwner(f"You are not permitted to modify image {image_id}.")
        return image

    async def deregister(self, image: Image) -> None:
        """EC2's DeregisterImage of an image get_owned gave: gone unless protected."""
        self._not_protected(image)
        await records.delete(self.db, self.store, image.id)

    async def register_bundle(self, project_id: str, location: str, *, name: str | None,
                              description: str | None,
                              uuid_of: Callable[[str], Awaitable[str]]) -> Image:
        """A queued image for the EC2 bundle at `location` (its data follows in the
        background, bundles.py); `uuid_of` turns the manifest's kernel and ramdisk ids into
        image uuids, which must be images the project sees (ImageNotVisible of the id as the
        manifest wrote it). BundleError for a bundle that cannot be registered."""

        async def visible_uuid(ref: str) -> str:
            uuid = await uuid_of(ref)
            if await self.find_visible(project_id, uuid) is None:
                raise ImageNotVisible(ref)
            return uuid

        return await bundles.register_bundle(self.host, project_id, location, name=name,
                                             description=description, resolve_image=visible_uuid)
