"""Image data: PUT/GET /v2/images/{id}/file, and `import_image` for the manage CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from cloudd.api.image import quota, records
from cloudd.api.image.common import (
    context,
    database,
    load_image,
    load_image_to_change,
    store,
)
from cloudd.api.image.errors import BadRequest, Conflict, Forbidden, Gone, TooLarge, Unavailable
from cloudd.db import Database
from cloudd.image.inspector import ImageUnacceptable
from cloudd.objectstore.storage import (
    CHUNK_SIZE,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StorageError,
    StorageFull,
)


async def request_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        yield chunk


async def receive(db: Database, object_store: ObjectStore, image_id: str,
                  chunks: AsyncIterator[bytes], declared_size: int | None, cap: int) \
        -> dict[str, Any]:
    """Store an upload, with the HTTP errors an uploader gets (409, 410, 413, 503)."""
    if declared_size is not None and declared_size > cap:
        raise TooLarge(f"Image exceeds the storage quota: {declared_size} > {cap} bytes")
    try:
        return await records.store_data(db, object_store, image_id, chunks, max_size=cap)
    except records.ImageStateConflict as exc:
        raise Conflict(f"Image {image_id} cannot take data now: {exc}") from None
    except records.ImageNotFound:
        raise Gone(f"Image {image_id} was deleted during the upload.") from None
    except ImageUnacceptable as exc:  # Glance: 400, the image stays queued
        raise BadRequest(f"Image {image_id} refused: {exc}") from None
    except ObjectTooLarge:
        raise TooLarge(f"Image exceeds the storage quota of {cap} bytes") from None
    except StorageFull:
        raise TooLarge("Image storage media is full.") from None
    except StorageError as exc:
        raise Unavailable(f"Image storage failed: {exc}") from None


async def upload(request: web.Request) -> web.Response:
    image = await load_image_to_change(request)
    if image["status"] != "queued":
        raise Conflict(f"Image {image['id']} is {image['status']}: data can only be uploaded "
                       "to a queued image.")
    cap, chunks = await quota.bounded_upload(request, image, request_chunks(request))
    await receive(database(request), store(request), image["id"], chunks,
                  request.content_length, cap)
    return web.Response(status=204)


async def stream_image(request: web.Request, object_store: ObjectStore,
                       image: dict[str, Any]) -> web.StreamResponse:
    """Send an active image's bytes with Content-MD5; 204 when it has no data."""
    if image["status"] not in ("active", "deactivated") or image["size"] is None:
        return web.Response(status=204)
    try:
        reader = await object_store.open_read(records.BUCKET, image["id"])
    except ObjectNotFound:
        raise Unavailable(f"The data of image {image['id']} is missing from the store") from None
    headers = {"Content-Type": "application/octet-stream",
               "Content-Length": str(reader.remaining)}
    if image["checksum"]:
        headers["Content-MD5"] = image["checksum"]
    response = web.StreamResponse(status=200, headers=headers)
    async with reader:
        await response.prepare(request)
        async for chunk in reader:
            await response.write(chunk)
    await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    image = await load_image(request)
    if image["status"] == "deactivated" and not context(request).is_admin:
        raise Forbidden(f"Image {image['id']} is deactivated.")
    return await stream_image(request, store(request), image)


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v2/images/{image_id}/file", upload)
    app.router.add_get("/v2/images/{image_id}/file", download)


# ----- the manage CLI's import --------------------------------------------------------------
async def file_chunks(path: Path, progress: Callable[[int], None] | None = None) \
        -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(open, path, "rb")
    done = 0
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            done += len(chunk)
            if progress is not None:
                progress(done)
            yield chunk
    finally:
        handle.close()


async def import_image(db: Database, object_store: ObjectStore, path: Path | str, name: str, *,
                       disk_format: str = "qcow2", container_format: str = "bare",
                       public: bool = False, owner: str | None = None,
                       properties: dict[str, str] | None = None, image_id: str | None = None,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Create an image from a local file (what `cloudd manage image import` does) and return
    its record. `progress(bytes_done, total)` is called per chunk. On failure no image remains."""
    path = Path(path)
    total = (await asyncio.to_thread(path.stat)).st_size
    if disk_format not in records.DISK_FORMATS:
        raise ValueError(f"disk format must be one of {', '.join(records.DISK_FORMATS)}")
    if container_format not in records.CONTAINER_FORMATS:
        raise ValueError(f"container format must be one of {', '.join(records.CONTAINER_FORMATS)}")
    image = await records.create(db, owner=owner, name=name,
                                 visibility="public" if public else "private",
                                 disk_format=disk_format, container_format=container_format,
                                 properties=properties, image_id=image_id)
    report = (lambda done: progress(done, total)) if progress is not None else None
    try:
        return await records.store_data(db, object_store, image["id"], file_chunks(path, report))
    except BaseException:
        await records.delete(db, object_store, image["id"])
        raise

