"""GET /v2/info/usage: Glance's view of the caller's project's image quotas (the quotas
themselves, and the 413s past them, are cloudd.image.quota's)."""

from __future__ import annotations

from aiohttp import web

from cloudd.api.image.common import context, image_api


async def usage(request: web.Request) -> web.Response:
    project_id = context(request).project_id
    if project_id is None:
        return web.json_response({"usage": {}})
    usage = await image_api(request).usage(project_id)
    body = {name: {"limit": value.limit, "usage": value.usage}
            for name, value in (("image_size_total", usage.image_size_total),
                                ("image_count_total", usage.image_count_total),
                                ("image_count_uploading", usage.image_count_uploading))}
    return web.json_response({"usage": body})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/info/usage", usage)
