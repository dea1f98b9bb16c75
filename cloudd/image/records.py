"""Image records in the database and their data in the object store, without HTTP.

Used by the Image API handlers, the agents' transfer routes, the compute API (which images a
project may boot) and `import_image`. An image's bytes are the object `<image id>` in the bucket
`images` of the store at `<state_dir>/glance` (its own root, so the S3 API never lists it).

A row becomes an `Image` once, in `from_row` (tags and properties parsed, flags as booleans);
everything above the repository holds that record, never the row.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from cloudd import errors
from cloudd.config import CloudConfig
from cloudd.db import Executor, Row, conditional_update, insert
from cloudd.image import inspector
from cloudd.objectstore.storage import ObjectStore, StoredObject
from cloudd.rpc.contracts.compute import ImageInfo
from cloudd.storage_quota import Usage

BUCKET = "images"
# Glance's default image_size_cap: 1 TiB.
IMAGE_SIZE_CAP = 1024**4
# An upload in progress touches its image this often; one untouched for STALE_UPLOAD seconds
# lost its uploader (a controller killed mid-upload) and goes back to queued.
UPLOAD_TOUCH = 20.0
STALE_UPLOAD = 90.0

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "killed", "deleted", "deactivated",
            "uploading", "importing", "pending_delete")


class ImageNotFound(errors.NotFound):
    """No image of that id (the message is the id)."""


class ImageStateConflict(errors.Conflict):
    """The image is not in a state that allows the operation (Glance's 409)."""


def image_store(config: CloudConfig) -> ObjectStore:
    return ObjectStore(Path(config.default.state_dir) / "glance")


class Image(BaseModel):
    """Glance's image: the columns of ``images`` (cloudd/db/migrations/0003_images.sql),
    decoded. ``properties`` are the extra top-level keys of the Image API, strings as Glance
    keeps them (every writer stores strings: the API checks them, snapshots and bundles make
    them); EC2's kernel_id, ramdisk_id, image_location and image_state are among them."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    owner: str | None = None  # a project id; None for images nobody owns
    status: str
    visibility: str
    protected: bool = False
    os_hidden: bool = False
    disk_format: str | None = None
    container_format: str | None = None
    size: int | None = None  # None until the data is stored
    virtual_size: int | None = None
    checksum: str | None = None  # md5 hex
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    tags: list[str] = Field(default_factory=list)
    properties: dict[str, str] = Field(default_factory=dict)
    created_at: float
    updated_at: float


COLUMNS = frozenset(Image.model_fields)


@dataclass(frozen=True)
class ImageFormats:
    """An image's formats alone (what EC2's ami-/aki-/ari- prefix is made of)."""

    container_format: str | None
    disk_format: str | None


_PROPERTIES = TypeAdapter(dict[str, str])


def from_row(row: Row) -> Image:
    """The one decoding of an images row: JSON columns parsed, 0/1 flags as booleans."""
    values = dict(row)
    values["tags"] = json.loads(values.get("tags") or "[]")
    values["properties"] = json.loads(values.get("properties") or "{}")
    return Image.model_validate(values)


async def get(db: Executor, image_id: str) -> Image:
    row = await db.fetchrow("SELECT * FROM images WHERE id = $1", image_id)
    if row is None:
        raise ImageNotFound(image_id)
    return from_row(row)


async def owner_of(db: Executor, image_id: str) -> str | None:
    """The image's owner (None for an unknown image or one without owner)."""
    owner = await db.fetchval("SELECT owner FROM images WHERE id = $1", image_id)
    return None if owner is None else str(owner)


async def all_oldest_first(db: Executor) -> list[Image]:
    """Every image (any status, any owner), by creation time then id."""
    return [from_row(r) for r in await db.fetch("SELECT * FROM images ORDER BY created_at, id")]


async def owned_oldest_first(db: Executor, owner: str) -> list[Image]:
    """A project's images (any status), by creation time then id."""
    return [from_row(r) for r in await db.fetch(
        "SELECT * FROM images WHERE owner = $1 ORDER BY created_at, id", owner)]


async def formats_of(db: Executor, image_ids: list[str]) -> dict[str, ImageFormats]:
    """id -> formats of those images that exist."""
    if not image_ids:
        return {}
    marks = ", ".join(f"${n}" for n in range(1, len(image_ids) + 1))
    rows = await db.fetch(f"SELECT id, container_format, disk_format FROM images"
                          f" WHERE id IN ({marks})", *image_ids)
    return {r["id"]: ImageFormats(r["container_format"], r["disk_format"]) for r in rows}


async def properties_of(db: Executor, image_id: str) -> dict[str, str] | None:
    """The image's properties (None for an unknown image)."""
    row = await db.fetchrow("SELECT properties FROM images WHERE id = $1", image_id)
    if row is None:
        return None
    return _PROPERTIES.validate_json(row["properties"] or "{}")


async def count_saving(db: Executor, owner: str) -> int:
    """How many of the owner's images are being uploaded (status `saving`)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM images WHERE owner = $1 AND"
                                 " status = 'saving'", owner) or 0)


async def usage(db: Executor, owner: str) -> Usage:
    """Bytes and count of the owner's images (queued ones in the count): the storage quota's
    image usage."""
    row = await db.fetchrow("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM images"
                            " WHERE owner = $1", owner)
    assert row is not None
    return Usage(int(row["bytes"]), int(row["n"]))


async def queued_before(db: Executor, cutoff: float) -> list[Image]:
    """Images still `queued` (without data) created before `cutoff`, oldest first."""
    return [from_row(r) for r in await db.fetch(
        "SELECT * FROM images WHERE status = 'queued' AND created_at < $1"
        " ORDER BY created_at, id", cutoff)]


async def delete_if_queued(db: Executor, image_id: str) -> None:
    """The image row goes, if it is still `queued` (without data)."""
    await db.execute("DELETE FROM images WHERE id = $1 AND status = 'queued'", image_id)


async def find_visible(db: Executor, image_id: str, project_id: str | None,
                       is_admin: bool) -> Image | None:
    """The image if this project may see it (Glance's rules), else None."""
    try:
        image = await get(db, image_id)
    except ImageNotFound:
        return None
    return image if await is_visible(db, image, project_id, is_admin) else None


async def is_visible(db: Executor, image: Image, project_id: str | None,
                     is_admin: bool) -> bool:
    if is_admin or image.visibility in ("public", "community"):
        return True
    if project_id is not None and image.owner == project_id:
        return True
    if image.visibility == "shared" and project_id is not None:
        member = await db.fetchval("SELECT status FROM image_members WHERE image_id = $1"
                                   " AND member = $2", image.id, project_id)
        return member is not None
    return False


async def create(db: Executor, *, owner: str | None, name: str | None = None,
                 visibility: str = "shared", disk_format: str | None = None,
                 container_format: str | None = None, min_disk: int = 0, min_ram: int = 0,
                 protected: bool = False, os_hidden: bool = False, tags: list[str] | None = None,
                 properties: dict[str, str] | None = None, image_id: str | None = None) \
        -> Image:
    """A new `queued` image record (no data yet)."""
    now = time.time()
    row = await insert(db, "images", {
        "id": image_id or str(uuidlib.uuid4()), "name": name, "owner": owner, "status": "queued",
        "visibility": visibility, "protected": int(protected), "os_hidden": int(os_hidden),
        "disk_format": disk_format, "container_format": container_format,
        "min_disk": min_disk, "min_ram": min_ram, "tags": json.dumps(tags or []),
        "properties": json.dumps(properties or {}), "created_at": now, "updated_at": now,
    })
    return from_row(row)


async def update(db: Executor, image_id: str, values: Mapping[str, object],
                 expected_status: list[str] | None = None) -> Image:
    """Save `values` (columns of `Image`, tags/properties as Python objects);
    ImageStateConflict if the status is not one of `expected_status`, ImageNotFound if the
    image is gone."""
    unknown = set(values) - COLUMNS
    if unknown:  # a misspelt column fails here, before any SQL
        raise KeyError(f"not image columns: {', '.join(sorted(unknown))}")
    stored = dict(values)
    for column in ("tags", "properties"):
        if column in stored:
            stored[column] = json.dumps(stored[column])
    for column in ("protected", "os_hidden"):
        if column in stored:
            stored[column] = int(bool(stored[column]))
    stored["updated_at"] = time.time()
    expected = {"status": expected_status} if expected_status is not None else None
    row = await conditional_update(db, "images", {"id": image_id}, stored, expected)
    if row is None:
        current = await get(db, image_id)  # raises ImageNotFound when it is gone
        raise ImageStateConflict(
            f"Image {image_id} is {current.status}, not {' or '.join(expected_status or [])}")
    return from_row(row)


async def _touching(db: Executor, image_id: str,
                    chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upload's chunks; its image's updated_at is refreshed every UPLOAD_TOUCH seconds,
    which tells reset_stale_uploads (on any controller) that its uploader is alive."""
    touched = time.monotonic()
    async for chunk in chunks:
        if time.monotonic() - touched >= UPLOAD_TOUCH:
            touched = time.monotonic()
            await update(db, image_id, {}, expected_status=["saving"])
        yield chunk


async def reset_stale_uploads(db: Executor, older_than: float | None = None) -> list[str]:
    """Images left `saving` by an uploader that died (untouched for `older_than` seconds) go
    back to queued: no half image is ever active, and the upload can be made again. The store
    never published their partial data (it renames a finished object into place only)."""
    cutoff = time.time() - (STALE_UPLOAD if older_than is None else older_than)
    reset = []
    for row in await db.fetch("SELECT id, updated_at FROM images WHERE status = 'saving'"
                              " AND updated_at < $1", cutoff):
        image_id = str(row["id"])
        # Only if nobody touched it since it was read: a slow live upload keeps its image.
        done = await conditional_update(
            db, "images", {"id": image_id}, {"status": "queued", "updated_at": time.time()},
            {"status": ["saving"], "updated_at": [row["updated_at"]]})
        if done is not None:
            reset.append(image_id)
    return reset


async def store_data(db: Executor, store: ObjectStore, image_id: str,
                     chunks: AsyncIterator[bytes], max_size: int = IMAGE_SIZE_CAP) -> Image:
    """Upload: queued -> saving -> active with size and hashes. A failed upload puts the image
    back to queued (it can be retried) and leaves no data; a deleted one leaves none either.
    Content that is not a safe image of the declared disk_format is refused the same way
    (inspector.ImageUnacceptable)."""
    image = await update(db, image_id, {"status": "saving"}, expected_status=["queued"])
    stored_format = image.disk_format
    try:
        stored: StoredObject = await store.put(BUCKET, image_id, _touching(db, image_id, chunks),
                                               max_size=max_size)
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


def image_info(image: Image) -> ImageInfo:
    """Compute's ImageInfo (what a driver needs) of an image record."""
    return ImageInfo(id=image.id, disk_format=image.disk_format,
                     container_format=image.container_format, size=image.size or 0,
                     properties=dict(image.properties))
