"""The rescue and unrescue actions (Nova's): the server boots a rescue image (the one asked
for, or its own image) with its own disks attached after it, and boots its own disks again at
unrescue. Bodies as Nova's schema: rescue null or {adminPass, rescue_image_ref}; unrescue
any value."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import StringConstraints

from cloudd.api.compute.common import (
    compute_api,
    context,
    engine_call,
    is_uuid,
    load_server_to_act,
)
from cloudd.api.compute.errors import BadRequest, validate
from cloudd.api.compute.server_models import Strict, answers_password, generate_password


class Rescue(Strict):
    adminPass: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    rescue_image_ref: str | None = None


async def rescue(request: web.Request, args: Any) -> web.StreamResponse:
    body = validate(Rescue, args) if args is not None else Rescue()
    image_ref = body.rescue_image_ref
    if image_ref is not None and not is_uuid(image_ref):
        raise BadRequest(f"Invalid input for field/attribute rescue_image_ref: {image_ref!r}"
                         " is not a 'uuid'")
    row = await load_server_to_act(request)
    ctx = context(request)
    if not (image_ref or row.image_ref):
        raise BadRequest("Cannot rescue a volume-backed instance without a rescue image")
    # The same checks as a boot's: visible to the caller, active, a disk image that fits.
    image = await compute_api(request).rebuild_image(row, image_ref or row.image_ref,
                                                     ctx.is_admin)
    await engine_call(request, row, "rescue", image=image)
    if answers_password(request):
        return web.json_response({"adminPass": body.adminPass or generate_password()})
    return web.json_response({})


async def unrescue(request: web.Request, args: Any) -> web.StreamResponse:
    row = await load_server_to_act(request)
    await engine_call(request, row, "unrescue")
    return web.Response(status=202)
