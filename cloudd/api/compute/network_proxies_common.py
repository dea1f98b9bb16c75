"""What the network proxies (network_proxies and network_proxies_groups) share: the network
front door, the below-2.36 gate and the request body of one object."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute.common import context
from cloudd.api.compute.errors import BadRequest, NotFound, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.api.keys import HOST_KEY
from cloudd.network.api import NetworkAPI


def _network(request: web.Request) -> NetworkAPI:
    return NetworkAPI(request.config_dict[HOST_KEY])


def _legacy(request: web.Request) -> str | None:
    """404 from 2.36 (as Nova); else the project the caller reads or acts in (None: admin)."""
    if request_version(request).at_least("2.36"):
        raise NotFound("The resource could not be found.")
    ctx = context(request)
    if ctx.is_admin:
        return None
    if request.method == "GET":
        ctx.require_read(ctx.project_id)
    else:
        ctx.require_act(ctx.project_id)
    return ctx.project_id


def _owner(request: web.Request) -> str:
    return str(context(request).project_id)


async def _body(request: web.Request, key: str) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"The request body needs a '{key}' object.")
    data: dict[str, Any] = body[key]
    return data
