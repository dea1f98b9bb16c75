"""Nova's `limit`/`marker` paging of a collection read whole (key pairs from 2.35, hypervisors
from 2.33): the items after the marker's, at most `limit` of them, and the `<name>_links` next
link when the page is full."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import urlencode

from aiohttp import web

from cloudd.api.compute import views
from cloudd.api.compute.common import parse_limit
from cloudd.api.compute.errors import BadRequest

T = TypeVar("T")


def page(request: web.Request, items: Sequence[T], key: Callable[[T], str]) -> list[T]:
    """The page `limit`/`marker` ask for (an unknown marker: Nova's 400)."""
    query = request.query
    limit = parse_limit(query)  # a bad limit is a 400 even without a marker
    rows = list(items)
    if "marker" in query:
        keys = [key(item) for item in rows]
        if query["marker"] not in keys:
            raise BadRequest(f"Marker {query['marker']} could not be found.")
        rows = rows[keys.index(query["marker"]) + 1:]
    return rows[:limit] if "limit" in query else rows


def next_links(request: web.Request, shown: Sequence[T], key: Callable[[T], str],
               path: str) -> list[dict[str, str]]:
    """[{rel: next, href}] when the page is exactly `limit` long (Nova's rule), else []."""
    if "limit" not in request.query or not shown or len(shown) != parse_limit(request.query):
        return []
    params = [(k, v) for k, v in request.query.items() if k != "marker"]
    params.append(("marker", key(shown[-1])))
    return [{"rel": "next",
             "href": f"{views.base_url(request)}/v2.1/{path}?{urlencode(params)}"}]
