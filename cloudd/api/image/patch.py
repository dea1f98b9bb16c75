"""PATCH /v2/images/{id}: Glance's JSON-patch subset (add, replace, remove), each operation
applied through the domain's ImagePatch (whose rules refuse it) and saved by ImageAPI.update."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.image.common import context, image_api, read_json
from cloudd.api.image.errors import BadRequest, UnsupportedMediaType
from cloudd.api.image.views import image_view
from cloudd.image.rules import ImagePatch

MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch",
               "application/openstack-images-v2.0-json-patch")


def _attribute(path: Any) -> str:
    """"/foo" -> "foo", with JSON pointer escapes (~1 is "/", ~0 is "~"); one level only."""
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    name = path[1:]
    if "/" in name:
        raise BadRequest(f"Nested paths are not allowed: '{path}'")
    return name.replace("~1", "/").replace("~0", "~")


def apply_operation(patch: ImagePatch, op: Any) -> None:
    """One JSON-patch operation, as the domain change it means."""
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
        raise BadRequest(f"Operation objects must have op add, replace or remove: {op!r}")
    name = _attribute(op.get("path"))
    kind = op["op"]
    if kind != "remove" and "value" not in op:
        raise BadRequest(f"Operation '{kind}' on '{name}' needs a value")
    if kind == "remove":
        patch.remove(name)
    else:
        patch.set(name, op["value"], must_exist=kind == "replace")


async def update(request: web.Request) -> web.Response:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type must be {MEDIA_TYPES[0]} (JSON patch), not '{content_type}'")
    ctx = context(request)
    images = image_api(request)
    image = await images.get_to_change(ctx, request.match_info["image_id"])
    operations = await read_json(request)
    if not isinstance(operations, list):
        raise BadRequest("A JSON patch is a list of operations.")
    patch = ImagePatch(ctx, image)
    for op in operations:
        apply_operation(patch, op)
    return web.json_response(image_view(await images.update(image, patch.changes)))


def add_routes(app: web.Application) -> None:
    app.router.add_patch("/v2/images/{image_id}", update)
