"""What every Network API handler uses: the caller, the database, the NetworkAPI, list
filters and ``fields=`` selection, and the stable ids of objects nova-network has no row for
(a subnet per network, a network per floating IP pool)."""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

from aiohttp import web

from cloudd.api.auth import get_context, request_database
from cloudd.api.keys import HOST_KEY
from cloudd.api.network.errors import NotFound
from cloudd.db import Database
from cloudd.identity.policy import RequestContext
from cloudd.network.api import NetworkAPI

# Query parameters that are paging/sorting, never attribute filters.
NOT_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "verbose"}
_NAMESPACE = uuidlib.UUID("6b1f3c2e-4d5a-4e8f-9a0b-1c2d3e4f5a6b")


def context(request: web.Request) -> RequestContext:
    return get_context(request)


def database(request: web.Request) -> Database:
    return request_database(request)


def network_api(request: web.Request) -> NetworkAPI:
    return NetworkAPI(request.config_dict[HOST_KEY])


def reader_project(request: web.Request) -> str | None:
    """The project whose objects the caller sees (None: an admin sees every project's)."""
    ctx = context(request)
    if ctx.is_admin:
        return None
    ctx.require_read(ctx.project_id)
    return ctx.project_id


def actor_project(request: web.Request) -> str | None:
    """The project the caller may change (None: an admin acts on any)."""
    ctx = context(request)
    if ctx.is_admin:
        return None
    ctx.require_act(ctx.project_id)
    return ctx.project_id


def subnet_id(network_uuid: str) -> str:
    """nova-network has one subnet per network: its id is derived from the network's."""
    return str(uuidlib.uuid5(_NAMESPACE, "subnet:" + network_uuid))


def pool_network_id(pool: str) -> str:
    """A floating IP pool is an external (``router:external``) network in the Network API."""
    return str(uuidlib.uuid5(_NAMESPACE, "floating-pool:" + pool))


def isotime(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp or 0))


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in (w.lower() for w in wanted)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    return str(value) in wanted


def filter_items(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutron's exact-match filters (a repeated parameter matches any of its values);
    list-valued attributes (tags, fixed_ips) are not filtered on."""
    query = request.query
    for key in set(query) - NOT_FILTERS:
        wanted = query.getall(key)
        items = [item for item in items
                 if key not in item or isinstance(item[key], list | dict)
                 or _matches(item[key], wanted)]
    return items


def select_fields(request: web.Request, item: dict[str, Any]) -> dict[str, Any]:
    fields = request.query.getall("fields", [])
    if not fields:
        return item
    return {key: value for key, value in item.items() if key in fields}


def list_response(request: web.Request, collection: str,
                  items: list[dict[str, Any]]) -> web.Response:
    items = filter_items(request, items)
    return web.json_response({collection: [select_fields(request, i) for i in items]})


def item_response(request: web.Request, resource: str, item: dict[str, Any],
                  status: int = 200) -> web.Response:
    return web.json_response({resource: select_fields(request, item)}, status=status)


def find(items: list[dict[str, Any]], item_id: str, kind: str, label: str) -> dict[str, Any]:
    """By id only: a name is a 404, so clients fall back to listing with ?name=."""
    for item in items:
        if item["id"] == item_id:
            return item
    raise NotFound(f"{label} {item_id} could not be found.", kind)
