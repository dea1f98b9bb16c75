"""Image bytes between the controller and the agents, over the agent listener's port.

Controller side (`add_agent_routes` on the conductor's listener app, behind its admission: only
enrolled hosts reach these handlers, and each request carries its host's name):

    GET /images/{id}            the bytes of an image this host needs for its own instances: the
                                image_ref, kernel_id or ramdisk_id of a non-deleted instance on
                                it, or the kernel/ramdisk its boot image's properties name
    PUT /images/{id}/snapshot   a snapshot's bytes into its queued image (then active), only for
                                a snapshot of an instance on this host

Anything else is 404, whether the image exists or not: a host learns nothing about the images
of other hosts' instances.

Agent side: `upload_snapshot` / `download_image`, given the controller's websocket URL
(wss://ctl:8780/agent, which names the same listener) and the agent's TLS client context.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from cloudd.api.image import records
from cloudd.api.image.data import file_chunks, receive, request_chunks, stream_image
from cloudd.api.image.errors import ImageApiError, NotFound, error_middleware
from cloudd.cert.admission import AGENT_HOST
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService

LOG = logging.getLogger(__name__)
_HOST_KEY = web.AppKey("image_transfer_host", ServiceHost)
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)


def add_agent_routes(app: web.Application, host: ServiceHost) -> None:
    app[_HOST_KEY] = host
    app.middlewares.append(error_middleware)
    app.router.add_get("/images/{image_id}", _send_image)
    app.router.add_put("/images/{image_id}/snapshot", _receive_snapshot)


async def needed_by_host(db: Database, host_name: str, image_id: str) -> bool:
    """Whether `image_id` boots (or is the kernel/ramdisk of) an instance on `host_name`."""
    direct = await db.fetchval(
        "SELECT COUNT(*) FROM instances WHERE host = $1 AND deleted = 0"
        " AND (image_ref = $2 OR kernel_id = $2 OR ramdisk_id = $2)", host_name, image_id)
    if direct:
        return True
    boot_images = await db.fetch(
        "SELECT DISTINCT images.id, images.properties FROM images JOIN instances"
        " ON instances.image_ref = images.id WHERE instances.host = $1 AND instances.deleted = 0",
        host_name)
    for row in boot_images:
        properties: Any = json.loads(row["properties"] or "{}")
        if isinstance(properties, dict) and image_id in (properties.get("kernel_id"),
                                                         properties.get("ramdisk_id")):
            return True
    return False


async def _image(request: web.Request, image_id: str) -> dict[str, Any]:
    try:
        return await records.get(request.app[_HOST_KEY].get(DatabaseService).db, image_id)
    except records.ImageNotFound:
        raise NotFound(f"No image found with ID {image_id}") from None


def _refuse(request: web.Request, image_id: str, why: str) -> NotFound:
    LOG.warning("refused image %s to host %s: %s", image_id, request[AGENT_HOST], why)
    return NotFound(f"No image found with ID {image_id}")


async def _send_image(request: web.Request) -> web.StreamResponse:
    host = request.app[_HOST_KEY]
    image_id = request.match_info["image_id"]
    if not await needed_by_host(host.get(DatabaseService).db, request[AGENT_HOST], image_id):
        raise _refuse(request, image_id, "no instance on that host uses it")
    return await stream_image(request, records.image_store(host.config),
                              await _image(request, image_id))


async def _receive_snapshot(request: web.Request) -> web.Response:
    host = request.app[_HOST_KEY]
    db = host.get(DatabaseService).db
    image_id = request.match_info["image_id"]
    image = await _image(request, image_id)
    properties = image["properties"]
    if (not isinstance(properties, dict) or properties.get("image_type") != "snapshot"
            or image["status"] != "queued"):
        raise _refuse(request, image_id, "not a snapshot waiting for its data")
    on_host = await db.fetchval(
        "SELECT COUNT(*) FROM instances WHERE uuid = $1 AND host = $2 AND deleted = 0",
        str(properties.get("instance_uuid")), request[AGENT_HOST])
    if not on_host:
        raise _refuse(request, image_id, "a snapshot of an instance on another host")
    await receive(db, records.image_store(host.config), image_id, request_chunks(request),
                  request.content_length, records.IMAGE_SIZE_CAP)
    return web.Response(status=204)


# ----- agent side -------------------------------------------------------------------------------
class TransferError(Exception):
    pass


def http_base(controller_ws_url: str) -> str:
    """wss://ctl:8780/agent -> https://ctl:8780 (the listener is TLS only: ws:// too)."""
    parts = urlsplit(controller_ws_url)
    return urlunsplit(("https", parts.netloc, "", "", ""))


async def upload_snapshot(controller_ws_url: str, image_id: str, path: Path,
                          tls: ssl.SSLContext) -> None:
    url = f"{http_base(controller_ws_url)}/images/{image_id}/snapshot"
    size = (await asyncio.to_thread(path.stat)).st_size
    async with aiohttp.ClientSession(timeout=TRANSFER_TIMEOUT) as session, session.put(
            url, data=file_chunks(path), headers={"Content-Length": str(size),
                                                  "Content-Type": "application/octet-stream"},
            ssl=tls,
    ) as response:
        if response.status != 204:
            raise TransferError(f"uploading snapshot {image_id} failed: {response.status} "
                                f"{(await response.text())[:200]}")


async def download_image(controller_ws_url: str, image_id: str, dest: Path,
                         tls: ssl.SSLContext) -> int:
    """Fetch an image into `dest` (written to a temp name, then renamed); its size."""
    url = f"{http_base(controller_ws_url)}/images/{image_id}"
    temp = dest.with_name(f".{dest.name}.part")
    async with aiohttp.ClientSession(timeout=TRANSFER_TIMEOUT) as session, \
            session.get(url, ssl=tls) as response:
        if response.status != 200:
            raise TransferError(f"downloading image {image_id} failed: {response.status}")
        size = await _save(response.content.iter_chunked(1024 * 1024), temp)
    await asyncio.to_thread(temp.rename, dest)
    return size


async def _save(chunks: AsyncIterator[bytes], temp: Path) -> int:
    handle = await asyncio.to_thread(open, temp, "wb")
    size = 0
    try:
        async for chunk in chunks:
            await asyncio.to_thread(handle.write, chunk)
            size += len(chunk)
    except BaseException:
        handle.close()
        # Plain call, also under cancellation: unlinking one file is quick.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    handle.close()
    return size


__all__ = ["ImageApiError", "TransferError", "add_agent_routes", "download_image",
           "upload_snapshot"]
