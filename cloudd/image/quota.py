"""Glance's per-project image quotas (unified limits image_size_total in MiB and
image_count_total, whose rules are cloudd.storage_quota's; the usage is counted by
cloudd.image.records): the refusals past them (ImageTooLarge,
Glance's 413) and the usage GET /v2/info/usage shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from cloudd import storage_quota
from cloudd.db import Executor
from cloudd.image import records
from cloudd.image.rules import ImageTooLarge


@dataclass(frozen=True)
class LimitUsage:
    limit: int
    usage: int


@dataclass(frozen=True)
class ImageQuotaUsage:
    """A project's image limits and what it uses of them (uploading: images being saved,
    counted against image_count_total as Glance shows them)."""

    image_size_total: LimitUsage
    image_count_total: LimitUsage
    image_count_uploading: LimitUsage


async def room(db: Executor, owner: str, new_item: bool = True) -> storage_quota.Room:
    """The owner's room for one more image (`new_item`) or for the data of one it has."""
    return await storage_quota.room(db, owner, "image", await records.usage(db, owner),
                                    new_item=new_item)


async def check_image_count(db: Executor, owner: str | None) -> None:
    """Before an image record is made for `owner` (None: nobody's, never limited)."""
    if owner is None:
        return
    space = await room(db, owner)
    if not space.count_fits:
        raise ImageTooLarge("Quota exceeded: the project has reached its image_count_total "
                            "limit.")


async def bounded_upload(db: Executor, image: records.Image, size_cap: int,
                         chunks: AsyncIterator[bytes]) -> tuple[int, AsyncIterator[bytes]]:
    """(the size cap, the metered chunks) for an upload of `image`'s data: the cap is the
    smaller of Glance's image_size_cap and what is left of the owner's image_size_total."""
    if image.owner is None:
        return size_cap, chunks
    space = await room(db, image.owner, new_item=False)
    cap = size_cap if space.bytes_left is None else min(size_cap, space.bytes_left)
    return cap, storage_quota.metered(chunks, image.owner, space, lambda: ImageTooLarge(
        "Image exceeds the storage quota: the project's image_size_total would be exceeded."))


async def usage(db: Executor, project_id: str) -> ImageQuotaUsage:
    limits = await storage_quota.storage_limits(db, project_id)
    used = storage_quota.in_units("image", await records.usage(db, project_id))
    uploading = await records.count_saving(db, project_id)
    return ImageQuotaUsage(
        LimitUsage(limits["image_size_total"], used["image_size_total"]),
        LimitUsage(limits["image_count_total"], used["image_count_total"]),
        LimitUsage(limits["image_count_total"], uploading))
