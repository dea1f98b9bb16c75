"""What every image handler needs: the caller, the database, the store, loading an image."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from cloudd.api import inputs
from cloudd.api.auth import RequestContext, get_context, request_database
from cloudd.api.image import records
from cloudd.api.image.errors import BadRequest, Forbidden, NotFound
from cloudd.api.service import HOST_KEY
from cloudd.db import Database
from cloudd.objectstore.storage import ObjectStore

SIZE_CAP_KEY = web.AppKey("image_size_cap", int)


def context(request: web.Request) -> RequestContext:
    return get_context(request)


def database(request: web.Request) -> Database:
    return request_database(request)


def store(request: web.Request) -> ObjectStore:
    return records.image_store(request.config_dict[HOST_KEY].config)


def size_cap(request: web.Request) -> int:
    return request.config_dict.get(SIZE_CAP_KEY, records.IMAGE_SIZE_CAP)


def is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def can_read(ctx: RequestContext) -> bool:
    """Any role in the project reads (reader is implied by member and admin)."""
    return ctx.is_admin or bool(ctx.roles & {"reader", "member"})


def can_write(ctx: RequestContext, image: dict[str, Any]) -> bool:
    """Owner project's members (or admins) change an image; readers never do."""
    return ctx.is_admin or ("member" in ctx.roles and image["owner"] == ctx.project_id)


async def load_image(request: web.Request, image_id: str | None = None) -> dict[str, Any]:
    """The image if the caller may see it; 404 otherwise (names, other projects' images)."""
    image_id = image_id or request.match_info["image_id"]
    ctx = context(request)
    if not can_read(ctx):
        raise Forbidden("You are not authorized to read images.")
    not_found = NotFound(f"No image found with ID {image_id}")
    if not is_uuid(image_id):
        raise not_found
    image = await records.find_visible(database(request), image_id.lower(), ctx.project_id,
                                       ctx.is_admin)
    if image is None:
        raise not_found
    return image


async def load_image_to_change(request: web.Request) -> dict[str, Any]:
    image = await load_image(request)
    if not can_write(context(request), image):
        raise Forbidden(f"You are not permitted to modify image {image['id']}.")
    return image


async def read_json(request: web.Request) -> Any:
    """The shared parser; its refusals (400, 413) leave in Glance's error body."""
    if not request.can_read_body:
        raise BadRequest("The request body is missing.")
    return await inputs.read_json(request)


def validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                          for err in exc.errors()[:3])
        raise BadRequest(f"Invalid input: {where}") from None
