"""Image records in the database and their data in the object store, without HTTP.

Used by the Image API handlers, the agents' transfer routes, the compute API (which images a
project may boot) and `import_image`. An image's bytes are the object `<image id>` in the bucket
`images` of the store at `<state_dir>/glance` (its own root, so the S3 API never lists it).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid as uuidlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cloudd.config import CloudConfig
from cloudd.db import Executor, conditional_update, insert
from cloudd.image import inspector
from cloudd.objectstore.storage import ObjectStore, StoredObject

BUCKET = "images"
# Glance's default image_size_cap: 1 TiB.
IMAGE_SIZE_CAP = 1024**4

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "killed", "deleted", "deactivated",
            "uploading", "importing", "pending_delete")


class ImageNotFound(Exception):
    pass


class ImageStateConflict(Exception):
    """The image is not in a state that allows the operation (Glance's 409)."""


def image_store(config: CloudConfig) -> ObjectStore:
    return ObjectStore(Path(config.default.state_dir) / "glance")


def decode(row: dict[str, Any]) -> dict[str, Any]:
    image = dict(row)
    image["tags"] = json.loads(image.get("tags") or "[]")
    image["properties"] = json.loads(image.get("properties") or "{}")
    image["protected"] = bool(image["protected"])
    image["os_hidden"] = bool(image["os_hidden"])
    return image


async def get(db: Executor, image_id: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT * FROM images WHERE id = $1", image_id)
    if row is None:
        raise ImageNotFound(image_id)
    return decode(row)


async def find_visible(db: Executor, image_id: str, project_id: str | None,
                       is_admin: bool) -> dict[str, Any] | None:
    """The image if this project may see it (Glance's rules), else None."""
    try:
        image = await get(db, image_id)
    except ImageNotFound:
        return None
    return image if await is_visible(db, image, project_id, is_admin) else None


async def is_visible(db: Executor, image: dict[str, Any], project_id: str | None,
                     is_admin: bool) -> bool:
    if is_admin or image["visibility"] in ("public", "community"):
        return True
    if project_id is not None and image["owner"] == project_id:
        return True
    if image["visibility"] == "shared" and project_id is not None:
        member = await db.fetchval("SELECT status FROM image_members WHERE image_id = $1"
                                   " AND member = $2", image["id"], project_id)
        return member is not None
    return False


async def create(db: Executor, *, owner: str | None, name: str | None = None,
                 visibility: str = "shared", disk_format: str | None = None,
                 container_format: str | None = None, min_disk: int = 0, min_ram: int = 0,
                 protected: bool = False, os_hidden: bool = False, tags: list[str] | None = None,
                 properties: dict[str, Any] | None = None, image_id: str | None = None) \
        -> dict[str, Any]:
    """A new `queued` image record (no data yet)."""
    now = time.time()
    row = await insert(db, "images", {
        "id": image_id or str(uuidlib.uuid4()), "name": name, "owner": owner, "status": "queued",
        "visibility": visibility, "protected": int(protected), "os_hidden": int(os_hidden),
        "disk_format": disk_format, "container_format": container_format,
        "min_disk": min_disk, "min_ram": min_ram, "tags": json.dumps(tags or []),
        "properties": json.dumps(properties or {}), "created_at": now, "updated_at": now,
    })
    return decode(row)


async def update(db: Executor, image_id: str, values: dict[str, Any],
                 expected_status: list[str] | None = None) -> dict[str, Any]:
    """Save `values` (tags/properties as Python objects); ImageStateConflict if the status is
    not one of `expected_status`, ImageNotFound if the image is gone."""
    stored = dict(values)
    for column in ("tags", "properties"):
        if column in stored:
            stored[column] = json.dumps(stored[column])
    for column in ("protected", "os_hidden"):
        if column in stored:
            stored[column] = int(stored[column])
    stored["updated_at"] = time.time()
    expected = {"status": expected_status} if expected_status is not None else None
    row = await conditional_update(db, "images", {"id": image_id}, stored, expected)
    if row is None:
        current = await get(db, image_id)  # raises ImageNotFound when it is gone
        raise ImageStateConflict(
            f"Image {image_id} is {current['status']}, not {' or '.join(expected_status or [])}")
    return decode(row)


async def store_data(db: Executor, store: ObjectStore, image_id: str,
                     chunks: AsyncIterator[bytes], max_size: int = IMAGE_SIZE_CAP) \
        -> dict[str, Any]:
    """Upload: queued -> saving -> active with size and hashes. A failed upload puts the image
    back to queued (it can be retried) and leaves no data; a deleted one leaves none either.
    Content that is not a safe image of the declared disk_format is refused the same way
    (inspector.ImageUnacceptable)."""
    image = await update(db, image_id, {"status": "saving"}, expected_status=["queued"])
    stored_format = image["disk_format"]
    try:
        stored: StoredObject = await store.put(BUCKET, image_id, chunks, max_size=max_size)
    except BaseException:
        try:
            await update(db, image_id, {"status": "queued"}, expected_status=["saving"])
        except (ImageNotFound, ImageStateConflict):
            pass
        raise
    try:
        await inspector.inspect_image(store.data_path(stored), stored_format)
    except BaseException:  # refused (or cancelled): no bytes of it stay, it can be retried
        await store.delete(BUCKET, image_id)
        with contextlib.suppress(ImageNotFound, ImageStateConflict):
            await update(db, image_id, {"status": "queued"}, expected_status=["saving"])
        raise
    try:
        return await update(db, image_id, {
            "status": "active", "size": stored.size, "checksum": stored.md5,
            "os_hash_algo": "sha512", "os_hash_value": stored.sha512,
        }, expected_status=["saving"])
    except (ImageNotFound, ImageStateConflict):
        await store.delete(BUCKET, image_id)  # deleted during the upload
        raise


async def delete(db: Executor, store: ObjectStore, image_id: str) -> None:
    await db.execute("DELETE FROM images WHERE id = $1", image_id)
    await store.delete(BUCKET, image_id)


def image_info_fields(image: dict[str, Any]) -> dict[str, Any]:
    """The fields of compute's ImageInfo (what a driver needs) from an image record."""
    return {"id": image["id"], "disk_format": image["disk_format"],
            "container_format": image["container_format"], "size": image["size"] or 0,
            "properties": dict(image["properties"])}
