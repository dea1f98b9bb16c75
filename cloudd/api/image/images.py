"""/v2/images: list (filters, sort, paging), show, create, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from cloudd.api.image import listing, quota, records
from cloudd.api.image.common import (
    can_read,
    context,
    database,
    is_uuid,
    load_image,
    load_image_to_change,
    read_json,
    store,
    validate,
)
from cloudd.api.image.errors import BadRequest, Conflict, Forbidden
from cloudd.api.image.views import CORE, READ_ONLY, image_view
from cloudd.api.paging import parse_limit_text
from cloudd.db import DuplicateError, IntegrityError

Name = Annotated[str, StringConstraints(max_length=255)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=255)]
DiskFormat = Literal["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
ContainerFormat = Literal["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
Visibility = Literal["public", "private", "shared", "community"]
MAX_PROPERTY_LENGTH = 65535
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at", "visibility", "owner", "min_disk", "min_ram")


class ImageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    name: Name | None = None
    visibility: Visibility = "shared"
    protected: StrictBool = False
    os_hidden: StrictBool = False
    disk_format: DiskFormat | None = None
    container_format: ContainerFormat | None = None
    min_disk: StrictInt = Field(0, ge=0, le=2**31 - 1)
    min_ram: StrictInt = Field(0, ge=0, le=2**31 - 1)
    tags: list[Tag] = Field(default_factory=list, max_length=128)
    owner: Annotated[str, StringConstraints(max_length=255)] | None = None


def split_properties(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(core fields, extra properties); read-only keys are 403, non-string properties 400."""
    core: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in body.items():
        if key in READ_ONLY and key != "id":
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key in CORE:
            core[key] = value
        else:
            properties[key] = check_property(key, value)
    return core, properties


def check_property(key: str, value: Any) -> str:
    if not key or len(key) > 255:
        raise BadRequest("Property names must be 1 to 255 characters long.")
    if not isinstance(value, str):
        raise BadRequest(f"Property '{key}' must be a string.")
    if len(value) > MAX_PROPERTY_LENGTH:
        raise BadRequest(f"Property '{key}' is too long.")
    return value


def check_publicize(ctx: Any, visibility: str) -> None:
    """Glance's default policy: only admins publish an image to every project."""
    if visibility == "public" and not ctx.is_admin:
        raise Forbidden("Only administrators may make an image public.")


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    if not (ctx.is_admin or "member" in ctx.roles):
        raise Forbidden("You are not authorized to create images.")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    core, properties = split_properties(body)
    fields = validate(ImageCreate, core)
    check_publicize(ctx, fields.visibility)
    if fields.id is not None and not is_uuid(fields.id):
        raise BadRequest(f"Image id {fields.id} is not a UUID.")
    if fields.owner is not None and fields.owner != ctx.project_id and not ctx.is_admin:
        raise Forbidden("You are not permitted to create images owned by another project.")
    await quota.check_image_count(database(request), fields.owner or ctx.project_id)
    try:
        image = await records.create(
            database(request), owner=fields.owner or ctx.project_id, name=fields.name,
            visibility=fields.visibility, disk_format=fields.disk_format,
            container_format=fields.container_format, min_disk=fields.min_disk,
            min_ram=fields.min_ram, protected=fields.protected, os_hidden=fields.os_hidden,
            tags=list(dict.fromkeys(fields.tags)), properties=properties,
            image_id=fields.id.lower() if fields.id else None)
    except (DuplicateError, IntegrityError):
        raise Conflict(f"An image with identifier {fields.id} already exists") from None
    view = image_view(image)
    return web.json_response(view, status=201, headers={"Location": f"/v2/images/{image['id']}"})


async def show(request: web.Request) -> web.Response:
    return web.json_response(image_view(await load_image(request)))


async def delete(request: web.Request) -> web.Response:
    image = await load_image_to_change(request)
    if image["protected"]:
        raise Forbidden(f"Image {image['id']} is protected and cannot be deleted.")
    if image["status"] == "saving":
        raise Conflict(f"Image {image['id']} is being uploaded; try again when it is done.")
    await records.delete(database(request), store(request), image["id"])
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


FILTERS = ("name", "status", "owner", "visibility", "disk_format", "container_format", "id")


def matches(image: dict[str, Any], query: Any, visibility: str | None) -> bool:
    for key in ("name", "status", "owner", "disk_format", "container_format"):
        if key in query and not _op_match(str(image[key]) if image[key] is not None else "",
                                          query[key]):
            return False
    if "id" in query and not _op_match(image["id"], query["id"]):
        return False
    if visibility not in (None, "all") and image["visibility"] != visibility:
        return False
    if visibility is None and image["visibility"] == "community" and \
            image["owner"] != query.get("_project"):
        return False
    for tag in query.getall("tag", []):
        if tag not in image["tags"]:
            return False
    hidden = query.get("os_hidden", "false").lower() == "true"
    if image["os_hidden"] != hidden:
        return False
    for key, value in query.items():  # anything else filters on a property (Glance does so)
        if key not in _NOT_PROPERTIES and image["properties"].get(key) != value:
            return False
    return _size_ok(image, query)


_NOT_PROPERTIES = frozenset({*FILTERS, "limit", "marker", "sort", "sort_key", "sort_dir", "tag",
                             "os_hidden", "member_status", "size_min", "size_max", "_project",
                             "created_at", "updated_at", "protected"})


def _op_match(value: str, wanted: str) -> bool:
    """Glance's `in:` operator (comma-separated, optionally quoted) and `eq:`."""
    if wanted.startswith("in:"):
        return value in {part.strip().strip('"') for part in wanted[3:].split(",")}
    if wanted.startswith("eq:"):
        wanted = wanted[3:]
    return value == wanted


def _size_ok(image: dict[str, Any], query: Any) -> bool:
    for key, check in (("size_min", lambda s, n: s >= n), ("size_max", lambda s, n: s <= n)):
        if key in query:
            try:
                bound = int(query[key])
            except ValueError:
                raise BadRequest(f"{key} must be an integer") from None
            if image["size"] is None or not check(image["size"], bound):
                return False
    return True


async def _marker(request: web.Request, image_id: str | None) -> dict[str, Any] | None:
    """The marker image, which the caller must be able to see; 400 otherwise."""
    if image_id is None:
        return None
    ctx = context(request)
    try:
        marker = await records.get(database(request), image_id)
    except records.ImageNotFound:
        marker = None
    if marker is None or not await records.is_visible(database(request), marker,
                                                      ctx.project_id, ctx.is_admin):
        raise BadRequest(f"marker {image_id} could not be found")
    return marker


async def index(request: web.Request) -> web.Response:
    ctx = context(request)
    if not can_read(ctx):
        raise Forbidden("You are not authorized to list images.")
    query = MultiDict(request.query)
    query["_project"] = ctx.project_id or ""
    visibility = query.get("visibility")
    if visibility is not None and visibility not in ("public", "private", "shared", "community",
                                                     "all"):
        raise BadRequest(f"Invalid visibility value: {visibility}")
    limit = parse_limit(query.get("limit"))
    order = parse_sort(query)
    db = database(request)
    marker = await _marker(request, query.get("marker"))
    page, more = await listing.page(
        db, project_id=ctx.project_id, is_admin=ctx.is_admin, query=query,
        visibility=visibility, order=order, limit=limit, marker=marker,
        keep=lambda image: matches(image, query, visibility))
    body: dict[str, Any] = {"images": [image_view(i) for i in page], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if more and page:
        params = [(k, v) for k, v in request.query.items() if k != "marker"]
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", page[-1]["id"])])
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/images", index)
    app.router.add_post("/v2/images", create)
    app.router.add_get("/v2/images/{image_id}", show)
    app.router.add_delete("/v2/images/{image_id}", delete)
