"""PATCH /v2/images/{id}: Glance's JSON-patch subset (add, replace, remove)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from cloudd.api.image import records
from cloudd.api.image.common import context, database, load_image_to_change, read_json
from cloudd.api.image.errors import BadRequest, Conflict, Forbidden, UnsupportedMediaType
from cloudd.api.image.images import (
    ContainerFormat,
    DiskFormat,
    ImageCreate,
    Name,
    Visibility,
    check_property,
    check_publicize,
)
from cloudd.api.image.views import MUTABLE_CORE, READ_ONLY, image_view

MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch",
               "application/openstack-images-v2.0-json-patch")
# The type each mutable core attribute must have (strictly: "1" is not an integer).
_CORE_TYPES: dict[str, Any] = {
    "name": Name | None, "visibility": Visibility, "disk_format": DiskFormat | None,
    "container_format": ContainerFormat | None, "owner": str | None,
    "protected": ImageCreate.model_fields["protected"].annotation,
    "os_hidden": ImageCreate.model_fields["os_hidden"].annotation,
    "min_ram": ImageCreate.model_fields["min_ram"].annotation,
    "min_disk": ImageCreate.model_fields["min_disk"].annotation,
    "tags": ImageCreate.model_fields["tags"].annotation,
}


def _attribute(path: Any) -> str:
    """"/foo" -> "foo", with JSON pointer escapes (~1 is "/", ~0 is "~"); one level only."""
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    name = path[1:]
    if "/" in name:
        raise BadRequest(f"Nested paths are not allowed: '{path}'")
    return name.replace("~1", "/").replace("~0", "~")


def _core_value(name: str, value: Any) -> Any:
    try:
        checked = TypeAdapter(_CORE_TYPES[name]).validate_python(value, strict=True)
    except ValidationError as exc:
        raise BadRequest(f"Invalid value for '{name}': {exc.errors()[0]['msg']}") from None
    if name in ("min_ram", "min_disk") and not 0 <= checked < 2**31:
        raise BadRequest(f"'{name}' must be between 0 and 2147483647")
    if name == "tags" and (len(checked) > 128 or any(not 0 < len(t) <= 255 for t in checked)):
        raise BadRequest("At most 128 tags of 1 to 255 characters each")
    return list(dict.fromkeys(checked)) if name == "tags" else checked


def apply_operation(image: dict[str, Any], changes: dict[str, Any], op: Any, ctx: Any) -> None:
    """Apply one operation to `changes` (core columns, plus "properties" once touched)."""
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
        raise BadRequest(f"Operation objects must have op add, replace or remove: {op!r}")
    name = _attribute(op.get("path"))
    kind = op["op"]
    if kind != "remove" and "value" not in op:
        raise BadRequest(f"Operation '{kind}' on '{name}' needs a value")
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in MUTABLE_CORE:
        if kind == "remove":
            raise Forbidden(f"Unable to remove core attribute '{name}'.")
        value = _core_value(name, op["value"])
        if name == "visibility":
            check_publicize(ctx, value)
        if name == "owner" and not ctx.is_admin:
            raise Forbidden("Only administrators may change an image's owner.")
        if name in ("disk_format", "container_format") and image["status"] != "queued":
            raise Forbidden(f"Attribute '{name}' can be only replaced for a queued image.")
        changes[name] = value
        return
    properties = changes.setdefault("properties", dict(image["properties"]))
    if kind == "remove" or kind == "replace":
        if name not in properties:
            raise Conflict(f"Property {name} does not exist.")
    if kind == "remove":
        del properties[name]
    else:
        properties[name] = check_property(name, op["value"])


async def update(request: web.Request) -> web.Response:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type must be {MEDIA_TYPES[0]} (JSON patch), not '{content_type}'")
    image = await load_image_to_change(request)
    operations = await read_json(request)
    if not isinstance(operations, list):
        raise BadRequest("A JSON patch is a list of operations.")
    ctx = context(request)
    changes: dict[str, Any] = {}
    for op in operations:
        apply_operation(image, changes, op, ctx)
    # A protected image may still change its metadata (as in Glance); only delete is refused.
    if changes:
        try:
            image = await records.update(database(request), image["id"], changes)
        except records.ImageNotFound:
            raise Conflict(f"Image {image['id']} was deleted meanwhile") from None
    return web.json_response(image_view(image))


def add_routes(app: web.Application) -> None:
    app.router.add_patch("/v2/images/{image_id}", update)
