"""The shelve actions: shelve, shelveOffload (admin, as Nova's policy) and unshelve (into an
availability zone from 2.77). Nova's schemas take any value for shelve and shelveOffload
(tempest sends {}) and, below 2.77, for unshelve; from 2.77 unshelve's is null or an object."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import StringConstraints

from cloudd.api.compute.common import (
    compute_api,
    context,
    engine_call,
    load_server_to_act,
    refusals_mapped,
    request_id,
)
from cloudd.api.compute.errors import BadRequest, validate
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_models import Strict


class Unshelve(Strict):
    availability_zone: Annotated[str, StringConstraints(strict=True, min_length=1,
                                                        max_length=255)] | None = None


async def shelve(request: web.Request, args: Any) -> web.StreamResponse:
    row = await load_server_to_act(request)
    await refusals_mapped(row, compute_api(request).shelve(row, request_id(request),
                                                           context(request)))
    return web.Response(status=202)


async def shelve_offload(request: web.Request, args: Any) -> web.StreamResponse:
    context(request).require_admin()
    row = await load_server_to_act(request)
    await engine_call(request, row, "shelveOffload")
    return web.Response(status=202)


async def unshelve(request: web.Request, args: Any) -> web.StreamResponse:
    """Below 2.77 the body is not read (Nova validates it from 2.77 on)."""
    zone = None
    if request_version(request).at_least("2.77") and args is not None:
        body = validate(Unshelve, args)
        if "availability_zone" in body.model_fields_set and body.availability_zone is None:
            raise BadRequest("Invalid input for field/attribute availability_zone: None is not"
                             " of type 'string'")
        zone = body.availability_zone
    row = await load_server_to_act(request)
    await refusals_mapped(row, compute_api(request).unshelve(row, request_id(request),
                                                             context(request), zone))
    return web.Response(status=202)
