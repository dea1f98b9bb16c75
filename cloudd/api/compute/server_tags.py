"""/servers/{id}/tags (microversion 2.26): Nova's server tags API.

A tag is a non-empty string of at most 60 characters without '/' or ','; a server holds at most
50. Below 2.26 the routes do not exist (404), as in Nova. Changing tags needs a server in a
settled state (Nova's _check_instance_in_valid_state: 409 otherwise).
"""

from __future__ import annotations

import re

from aiohttp import web

from cloudd.api.compute import views
from cloudd.api.compute.common import database, load_server, load_server_to_act
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound, parse_body
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_models import MAX_TAG_LENGTH, MAX_TAGS, TAG_PATTERN, Strict, Tag
from cloudd.compute.instances import Instance
from cloudd.compute.instances import tags as tag_store
from cloudd.vocab import states

# Nova's vm_states in which tags may change (its shelved states too, once cloudd shelves).
TAGGABLE_STATES = (states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED,
                   "shelved", "shelved_offloaded")


class TagsBody(Strict):
    tags: list[Tag]


def _since_2_26(request: web.Request) -> None:
    if not request_version(request).at_least("2.26"):
        raise NotFound("The resource could not be found.")


def check_tag(tag: str) -> str:
    """A tag from the URL, as Nova validates it (400 with its message)."""
    if not 1 <= len(tag) <= MAX_TAG_LENGTH or not re.match(TAG_PATTERN, tag):
        raise BadRequest(f"Tag '{tag}' is invalid. It must be a non empty string without "
                         f"characters '/' and ',' and at most {MAX_TAG_LENGTH} characters long.")
    return tag


def _too_many() -> BadRequest:
    return BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")


async def _taggable(request: web.Request, action: str) -> Instance:
    _since_2_26(request)
    row = await load_server_to_act(request, lock_checked=False)
    if row.vm_state not in TAGGABLE_STATES:
        raise Conflict(f"Cannot '{action}' instance {row.uuid} while it is in vm_state "
                       f"{row.vm_state}")
    return row


async def index(request: web.Request) -> web.Response:
    _since_2_26(request)
    row = await load_server(request)
    tags = await tag_store.tags_of(database(request), [row.uuid])
    return web.json_response({"tags": tags[row.uuid]})


async def show(request: web.Request) -> web.Response:
    _since_2_26(request)
    row = await load_server(request)
    tag = request.match_info["tag"]
    tags = await tag_store.tags_of(database(request), [row.uuid])
    if tag not in tags[row.uuid]:
        raise NotFound(f"Tag {tag} could not be found.")
    return web.Response(status=204)


async def update_all(request: web.Request) -> web.Response:
    _since_2_26(request)
    body = await parse_body(request, TagsBody)
    if len(body.tags) > MAX_TAGS:
        raise _too_many()
    row = await _taggable(request, "update tags")
    await tag_store.replace_tags(database(request), row.uuid, body.tags)
    return web.json_response({"tags": sorted(set(body.tags))}, status=200)


async def update(request: web.Request) -> web.Response:
    _since_2_26(request)
    tag = check_tag(request.match_info["tag"])
    row = await _taggable(request, "update tag")
    added = await tag_store.add_tag(database(request), row.uuid, tag, MAX_TAGS)
    if added is None:
        raise _too_many()
    if not added:
        return web.Response(status=204)
    location = views.links(request, "servers", row.uuid)[0]["href"] + f"/tags/{tag}"
    return web.Response(status=201, headers={"Location": location})


async def delete(request: web.Request) -> web.Response:
    _since_2_26(request)
    tag = request.match_info["tag"]
    row = await _taggable(request, "delete tag")
    if not await tag_store.delete_tag(database(request), row.uuid, tag):
        raise NotFound(f"Tag {tag} could not be found.")
    return web.Response(status=204)


async def delete_all(request: web.Request) -> web.Response:
    _since_2_26(request)
    row = await _taggable(request, "delete tags")
    await tag_store.delete_all_tags(database(request), row.uuid)
    return web.Response(status=204)


async def tags_of(request: web.Request, rows: list[Instance]) -> dict[str, list[str]] | None:
    """The views' tags of `rows` (one query), or None below 2.26 where views have none."""
    if not request_version(request).at_least("2.26"):
        return None
    return await tag_store.tags_of(database(request), [r.uuid for r in rows])


# Server list's tag filters (2.26), each a comma-separated list of tags.
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def tag_filters(request: web.Request) -> dict[str, set[str]]:
    """The list's tag filters the request gives (none below 2.26, where Nova ignores them)."""
    if not request_version(request).at_least("2.26"):
        return {}
    return {name: {tag for tag in request.query[name].split(",") if tag}
            for name in TAG_FILTERS if name in request.query}


def _tags_match(tags: set[str], filters: dict[str, set[str]]) -> bool:
    """Nova's semantics: tags (all of), tags-any (one of), not-tags (not all of),
    not-tags-any (none of)."""
    wanted = filters.get("tags")
    if wanted and not wanted <= tags:
        return False
    wanted = filters.get("tags-any")
    if wanted and not wanted & tags:
        return False
    wanted = filters.get("not-tags")
    if wanted and wanted <= tags:
        return False
    wanted = filters.get("not-tags-any")
    return not (wanted and wanted & tags)


async def filter_by_tags(request: web.Request, rows: list[Instance],
                         filters: dict[str, set[str]]) -> list[Instance]:
    tags = await tag_store.tags_of(database(request), [r.uuid for r in rows])
    return [r for r in rows if _tags_match(set(tags[r.uuid]), filters)]


def add_routes(app: web.Application, prefix: str) -> None:
    base = f"{prefix}/servers/{{server_id}}/tags"
    app.router.add_get(base, index)
    app.router.add_put(base, update_all)
    app.router.add_delete(base, delete_all)
    app.router.add_get(f"{base}/{{tag}}", show)
    app.router.add_put(f"{base}/{{tag}}", update)
    app.router.add_delete(f"{base}/{{tag}}", delete)

