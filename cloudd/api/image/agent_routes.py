"""The controller's side of image transfer to and from the agents: HTTP handlers over
ImageAPI (what a host may get or fill is cloudd.image.transfer's).

Controller side (`add_agent_routes` on the conductor's listener app, behind its admission: only
enrolled hosts reach these handlers, and each request carries its host's name):

    GET /images/{id}            the bytes of an image this host needs for its own instances: the
                                image_ref, kernel_id or ramdisk_id of a non-deleted instance on
                                it, or the kernel/ramdisk its boot image's properties name
    PUT /images/{id}/snapshot   a snapshot's bytes into its queued image (then active), only for
                                a snapshot of an instance on this host

Anything else is 404, whether the image exists or not: a host learns nothing about the images
of other hosts' instances.
"""

from __future__ import annotations

from aiohttp import web

from cloudd.api.image.data import request_chunks, stream_image
from cloudd.api.image.errors import error_middleware
from cloudd.cert.admission import AGENT_HOST
from cloudd.core import ServiceHost
from cloudd.image.api import ImageAPI

_HOST_KEY = web.AppKey("image_transfer_host", ServiceHost)


def add_agent_routes(app: web.Application, host: ServiceHost) -> None:
    app[_HOST_KEY] = host
    app.middlewares.append(error_middleware)
    app.router.add_get("/images/{image_id}", _send_image)
    app.router.add_put("/images/{image_id}/snapshot", _receive_snapshot)


async def _send_image(request: web.Request) -> web.StreamResponse:
    data = await ImageAPI(request.app[_HOST_KEY]).data_for_host(request[AGENT_HOST],
                                                                 request.match_info["image_id"])
    return await stream_image(request, data)


async def _receive_snapshot(request: web.Request) -> web.Response:
    await ImageAPI(request.app[_HOST_KEY]).receive_snapshot(
        request[AGENT_HOST], request.match_info["image_id"], request_chunks(request),
        request.content_length)
    return web.Response(status=204)
