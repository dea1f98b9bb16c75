"""Image data: PUT/GET /v2/images/{id}/file, and the streaming helpers the agents' routes
share. The state transitions, size cap and quotas are ImageAPI's (cloudd.image.api); the
import of a local file (`cloudd manage image import`) is cloudd.image.data."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from cloudd.api.image.common import context, image_api
from cloudd.image.api import ImageData
from cloudd.objectstore.storage import CHUNK_SIZE


async def request_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        yield chunk


async def upload(request: web.Request) -> web.Response:
    await image_api(request).upload(context(request), request.match_info["image_id"],
                                    request_chunks(request), request.content_length)
    return web.Response(status=204)


async def stream_image(request: web.Request, data: ImageData | None) -> web.StreamResponse:
    """Send an image's bytes with Content-MD5; 204 when it has none."""
    if data is None:
        return web.Response(status=204)
    headers = {"Content-Type": "application/octet-stream",
               "Content-Length": str(data.reader.remaining)}
    if data.checksum:
        headers["Content-MD5"] = data.checksum
    response = web.StreamResponse(status=200, headers=headers)
    async with data.reader:
        await response.prepare(request)
        async for chunk in data.reader:
            await response.write(chunk)
    await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    data = await image_api(request).download(context(request), request.match_info["image_id"])
    return await stream_image(request, data)


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v2/images/{image_id}/file", upload)
    app.router.add_get("/v2/images/{image_id}/file", download)
