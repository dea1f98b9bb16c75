"""/v2/images: list (filters, sort, paging), show, create, delete: the wire formats of
cloudd.image.api's ImageAPI (the rules are the domain's)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict
from pydantic import ConfigDict

from cloudd.api.image.common import context, image_api, read_json, validate
from cloudd.api.image.errors import BadRequest
from cloudd.api.image.views import image_view
from cloudd.api.paging import parse_limit_text
from cloudd.image.api import require_create, require_read
from cloudd.image.filters import VISIBILITY_FILTERS
from cloudd.image.rules import (
    CORE,
    READ_ONLY,
    ImageForbidden,
    NewImage,
    check_property,
)

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at", "visibility", "owner", "min_disk", "min_ram")


class ImageCreate(NewImage):
    """POST /v2/images' body: the domain's new image, refusing keys it does not know (the
    custom properties are split off the flat body first, and checked)."""

    model_config = ConfigDict(extra="forbid")


def split_properties(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(core fields, extra properties) of Glance's flat body, in the body's order: read-only
    keys are 403, bad properties 400."""
    core: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in body.items():
        if key in READ_ONLY and key != "id":
            raise ImageForbidden(f"Attribute '{key}' is read-only.")
        if key in CORE:
            core[key] = value
        else:
            properties[key] = check_property(key, value)
    return core, properties


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    require_create(ctx)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    core, properties = split_properties(body)
    new: ImageCreate = validate(ImageCreate, {**core, "properties": properties})
    image = await image_api(request).create(ctx, new)
    view = image_view(image)
    return web.json_response(view, status=201, headers={"Location": f"/v2/images/{image.id}"})


async def show(request: web.Request) -> web.Response:
    image = await image_api(request).get(context(request), request.match_info["image_id"])
    return web.json_response(image_view(image))


async def delete(request: web.Request) -> web.Response:
    await image_api(request).delete(context(request), request.match_info["image_id"])
    return web.Response(status=204)


# ----- listing ----------------------------------------------------------------------------------
def parse_limit(text: str | None) -> int:
    try:
        return parse_limit_text(text, DEFAULT_LIMIT, MAX_LIMIT)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def parse_sort(query: Any) -> list[tuple[str, bool]]:
    """[(key, descending)] from `sort=k1:asc,k2` or legacy `sort_key`/`sort_dir` pairs."""
    pairs: list[tuple[str, str]] = []
    if "sort" in query:
        for part in query["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        keys = query.getall("sort_key", [])
        dirs = query.getall("sort_dir", [])
        pairs = [(key, dirs[i] if i < len(dirs) else (dirs[0] if dirs else "desc"))
                 for i, key in enumerate(keys)]
    result = []
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Unsupported sort key: {key}")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Unsupported sort direction: {direction}")
        result.append((key, direction == "desc"))
    if not any(key == "created_at" for key, _ in result):
        result.append(("created_at", True))
    result.append(("id", True))
    return result


async def index(request: web.Request) -> web.Response:
    ctx = context(request)
    require_read(ctx, "list")
    query = MultiDict(request.query)
    visibility = query.get("visibility")
    if visibility is not None and visibility not in VISIBILITY_FILTERS:
        raise BadRequest(f"Invalid visibility value: {visibility}")
    limit = parse_limit(query.get("limit"))
    order = parse_sort(query)
    page, more = await image_api(request).page(ctx, query, visibility=visibility, order=order,
                                               limit=limit, marker_id=query.get("marker"))
    body: dict[str, Any] = {"images": [image_view(i) for i in page], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if more and page:
        params = [(k, v) for k, v in request.query.items() if k != "marker"]
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", page[-1].id)])
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/images", index)
    app.router.add_post("/v2/images", create)
    app.router.add_get("/v2/images/{image_id}", show)
    app.router.add_delete("/v2/images/{image_id}", delete)
