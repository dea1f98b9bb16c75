"""Image bytes between the controller and the agents, over the agent listener's HTTP port.

Controller side (`add_agent_routes` on the conductor's listener app):

    GET /images/{id}            the active image's bytes (agents fetch boot images)
    PUT /images/{id}/snapshot   a snapshot's bytes into its queued image (then active)

Agents hold no user token. For now these routes trust whoever reaches the listener, like the
agent websocket itself; the cert issue puts mutual TLS in front of both. The PUT only accepts
images created by createImage (image_type "snapshot", still queued), so it cannot overwrite
anything else.

Agent side: `upload_snapshot` / `download_image`, given the controller's websocket URL
(ws://ctl:8780/agent, which names the same listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from cloudd.api.image import records
from cloudd.api.image.data import file_chunks, receive, request_chunks, stream_image
from cloudd.api.image.errors import ImageApiError, NotFound, error_middleware
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService

_HOST_KEY = web.AppKey("image_transfer_host", ServiceHost)
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)


def add_agent_routes(app: web.Application, host: ServiceHost) -> None:
    app[_HOST_KEY] = host
    app.middlewares.append(error_middleware)
    app.router.add_get("/images/{image_id}", _send_image)
    app.router.add_put("/images/{image_id}/snapshot", _receive_snapshot)


async def _image(request: web.Request) -> tuple[ServiceHost, dict[str, object]]:
    host = request.app[_HOST_KEY]
    try:
        image = await records.get(host.get(DatabaseService).db, request.match_info["image_id"])
    except records.ImageNotFound:
        raise NotFound(f"No image found with ID {request.match_info['image_id']}") from None
    return host, image


async def _send_image(request: web.Request) -> web.StreamResponse:
    host, image = await _image(request)
    return await stream_image(request, records.image_store(host.config), image)


async def _receive_snapshot(request: web.Request) -> web.Response:
    host, image = await _image(request)
    properties = image["properties"]
    if not isinstance(properties, dict) or properties.get("image_type") != "snapshot":
        raise NotFound(f"Image {image['id']} is not a snapshot waiting for its data")
    await receive(host.get(DatabaseService).db, records.image_store(host.config),
                  str(image["id"]), request_chunks(request), request.content_length,
                  records.IMAGE_SIZE_CAP)
    return web.Response(status=204)


# ----- agent side -------------------------------------------------------------------------------
class TransferError(Exception):
    pass


def http_base(controller_ws_url: str) -> str:
    """ws://ctl:8780/agent -> http://ctl:8780 (wss -> https)."""
    parts = urlsplit(controller_ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


async def upload_snapshot(controller_ws_url: str, image_id: str, path: Path) -> None:
    url = f"{http_base(controller_ws_url)}/images/{image_id}/snapshot"
    size = (await asyncio.to_thread(path.stat)).st_size
    async with aiohttp.ClientSession(timeout=TRANSFER_TIMEOUT) as session, session.put(
            url, data=file_chunks(path), headers={"Content-Length": str(size),
                                                  "Content-Type": "application/octet-stream"},
    ) as response:
        if response.status != 204:
            raise TransferError(f"uploading snapshot {image_id} failed: {response.status} "
                                f"{(await response.text())[:200]}")


async def download_image(controller_ws_url: str, image_id: str, dest: Path) -> int:
    """Fetch an image into `dest` (written to a temp name, then renamed); its size."""
    url = f"{http_base(controller_ws_url)}/images/{image_id}"
    temp = dest.with_name(f".{dest.name}.part")
    async with aiohttp.ClientSession(timeout=TRANSFER_TIMEOUT) as session, \
            session.get(url) as response:
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
