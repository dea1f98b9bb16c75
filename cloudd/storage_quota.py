"""Storage quotas per project: bytes and count of images (Glance's unified limits
image_size_total / image_count_total) and of S3 objects (object_size_total /
object_count_total). Sizes are in MiB, as Glance counts image_size_total.

Limits are the defaults below, overridden by rows of the `quotas` table (`cloudd manage quota
set`, the same table as the compute quotas); usage is counted from the rows themselves, by the
image and object store repositories, and handed to the rules here by their callers. An
upload is metered as it streams: it stops as soon as the project's stored bytes plus the bytes
of this process's uploads in flight for the project pass the limit, so concurrent uploads
cannot each take the whole remaining room. (Room is read once per upload: an upload that
completes meanwhile can push the total over by at most its own size.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from cloudd import quota_limits
from cloudd.db import Executor

MIB = 1024**2
UNLIMITED = -1
STORAGE_QUOTAS: dict[str, int] = {
    "image_size_total": 100 * 1024,   # MiB
    "image_count_total": 100,
    "object_size_total": 100 * 1024,  # MiB, S3 objects and the parts of unfinished uploads
    "object_count_total": 100000,
}


@dataclass(frozen=True)
class Usage:
    """What a project stores of one kind, as the kind's own repository counts it
    (cloudd.image.records.usage, cloudd.objectstore.meta.usage): this module runs no SQL on
    their tables, since both packages import it to meter their uploads."""

    total_bytes: int
    count: int


@dataclass(frozen=True)
class Room:
    """What a project may still store of one kind: bytes (None: unlimited) and whether one
    more item fits."""

    resource: str
    limit_bytes: int | None
    used_bytes: int
    count_fits: bool

    @property
    def bytes_left(self) -> int | None:
        return None if self.limit_bytes is None else max(0, self.limit_bytes - self.used_bytes)


async def storage_limits(db: Executor, project_id: str) -> dict[str, int]:
    limits = dict(STORAGE_QUOTAS)
    for resource, limit in (await quota_limits.overrides(db, project_id)).items():
        if resource in limits:
            limits[resource] = limit
    return limits


def in_units(kind: str, used: Usage) -> dict[str, int]:
    """`used` of `kind` ("image" or "object") in the units of STORAGE_QUOTAS (size rounded up
    to whole MiB)."""
    return {f"{kind}_size_total": -(-used.total_bytes // MIB), f"{kind}_count_total": used.count}


def storage_usage(images: Usage, objects: Usage) -> dict[str, int]:
    """Both kinds' usage in the units of STORAGE_QUOTAS."""
    return in_units("image", images) | in_units("object", objects)


async def room(db: Executor, project_id: str, kind: str, used: Usage, freed_bytes: int = 0,
               new_item: bool = True) -> Room:
    """The room for one more upload of `kind` ("image" or "object") given what the project
    `used` of it; `freed_bytes` are bytes the upload replaces (an overwritten object),
    `new_item` whether it adds to the count."""
    limits = await storage_limits(db, project_id)
    size_limit, count_limit = limits[f"{kind}_size_total"], limits[f"{kind}_count_total"]
    return Room(f"{kind}_size_total",
                None if size_limit == UNLIMITED else size_limit * MIB,
                max(0, used.total_bytes - freed_bytes),
                not new_item or count_limit == UNLIMITED or used.count < count_limit)


_IN_FLIGHT: dict[tuple[str, str], int] = {}  # (kind, project) -> bytes received, not yet stored


async def metered(chunks: AsyncIterator[bytes], project_id: str, space: Room,
                  over: Callable[[], Exception]) -> AsyncIterator[bytes]:
    """`chunks`, stopped with `over()` once this upload and the project's other uploads in
    flight would pass the room's byte limit."""
    key = (space.resource, project_id)
    mine = 0
    try:
        async for chunk in chunks:
            mine += len(chunk)
            _IN_FLIGHT[key] = _IN_FLIGHT.get(key, 0) + len(chunk)
            if space.limit_bytes is not None and \
                    space.used_bytes + _IN_FLIGHT[key] > space.limit_bytes:
                raise over()
            yield chunk
    finally:
        left = _IN_FLIGHT.get(key, 0) - mine
        if left > 0:
            _IN_FLIGHT[key] = left
        else:
            _IN_FLIGHT.pop(key, None)
