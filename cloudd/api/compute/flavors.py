"""/flavors and os-extra_specs."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field, StringConstraints

from cloudd.api.compute import flavor_access, views
from cloudd.api.compute.common import context, database, parse_limit
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound, parse_body, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_models import Strict
from cloudd.compute import flavors
from cloudd.compute.flavors import Flavor
from cloudd.db import DuplicateError


def _to_bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return value


MAX_INT = 2**31 - 1


class FlavorCreate(Strict):
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\- ]+$", max_length=255)] | int | None = None
    # Nova's bounds (db.MAX_INT, SQL FLOAT): the columns are 32-bit INTEGER, and PostgreSQL
    # refuses a larger value deep in the insert, which would be a 5xx instead of this 400.
    ram: int = Field(ge=1, le=MAX_INT)
    vcpus: int = Field(ge=1, le=MAX_INT)
    disk: int = Field(ge=0, le=MAX_INT)
    swap: int = Field(0, ge=0, le=MAX_INT)
    ephemeral: int = Field(0, ge=0, le=MAX_INT, alias="OS-FLV-EXT-DATA:ephemeral")
    is_public: Annotated[bool, BeforeValidator(_to_bool)] = Field(
        True, alias="os-flavor-access:is_public")
    rxtx_factor: float = Field(1.0, gt=0, le=3.40282e38)
    description: Annotated[str, StringConstraints(max_length=65535)] | None = None


class FlavorCreateBody(Strict):
    flavor: FlavorCreate


class ExtraSpecsBody(Strict):
    extra_specs: dict[Annotated[str, StringConstraints(min_length=1, max_length=255)],
                      Annotated[str, StringConstraints(max_length=255)] | int | float | bool]


async def _find(request: web.Request) -> Flavor:
    return await flavor_access.visible_flavor(request)


async def _listing(request: web.Request, detail: bool) -> web.Response:
    ctx = context(request)
    query = request.query
    rows = await flavors.list_all(database(request))
    is_public = query.get("is_public", "true").lower()
    if is_public in ("true", "t", "1", "yes") or not ctx.is_admin:
        access = await flavors.ids_shared_with(database(request), ctx.project_id)
        if is_public in ("none",) or not ctx.is_admin:
            rows = [r for r in rows if r.is_public or r.id in access]
        else:
            rows = [r for r in rows if r.is_public]
    elif is_public in ("false", "f", "0", "no"):
        rows = [r for r in rows if not r.is_public]
    for key, column in (("minRam", "memory_mb"), ("minDisk", "root_gb")):
        if key in query:
            try:
                minimum = int(query[key])
            except ValueError:
                raise BadRequest(f"Invalid {key} filter [{query[key]}]") from None
            rows = [r for r in rows if getattr(r, column) >= minimum]
    if "marker" in query:
        ids = [r.flavorid for r in rows]
        if query["marker"] not in ids:
            raise BadRequest(f"marker [{query['marker']}] not found")
        rows = rows[ids.index(query["marker"]) + 1:]
    rows = rows[:parse_limit(query)]
    version = request_version(request)
    return web.json_response({"flavors": [views.flavor_view(request, r, version, detail)
                                          for r in rows]})


async def index(request: web.Request) -> web.Response:
    return await _listing(request, detail=False)


async def detail(request: web.Request) -> web.Response:
    return await _listing(request, detail=True)


async def show(request: web.Request) -> web.Response:
    row = await _find(request)
    return web.json_response({"flavor": views.flavor_view(request, row, request_version(request),
                                                          True)})


async def create(request: web.Request) -> web.Response:
    context(request).require_admin()
    version = request_version(request)
    spec = (await parse_body(request, FlavorCreateBody)).flavor
    if spec.description is not None and not version.at_least("2.55"):
        raise BadRequest("Invalid input: 'description' was unexpected at this microversion")
    flavorid = str(spec.id) if spec.id is not None else str(uuid.uuid4())
    try:
        row = await flavors.create(
            database(request), flavorid=flavorid, name=spec.name, memory_mb=spec.ram,
            vcpus=spec.vcpus, root_gb=spec.disk, ephemeral_gb=spec.ephemeral, swap=spec.swap,
            rxtx_factor=spec.rxtx_factor, is_public=spec.is_public,
            description=spec.description, now=time.time())
    except DuplicateError:
        raise Conflict(f"Flavor with name {spec.name} or ID {flavorid} already exists.") from None
    return web.json_response({"flavor": views.flavor_view(request, row, version, True)})


async def delete(request: web.Request) -> web.Response:
    context(request).require_admin()
    row = await _find(request)
    # Free the unique name and id for reuse; servers keep their own flavor snapshot.
    await flavors.mark_deleted(database(request), row.id,
                               f"deleted-{row.id}-{uuid.uuid4().hex[:8]}")
    return web.Response(status=202)


async def extra_specs_index(request: web.Request) -> web.Response:
    row = await _find(request)
    return web.json_response({"extra_specs": dict(row.extra_specs)})


async def _save_specs(request: web.Request, row: Flavor, specs: dict[str, Any]) -> None:
    await flavors.set_extra_specs(database(request), row.id, specs)


async def extra_specs_create(request: web.Request) -> web.Response:
    context(request).require_admin()
    row = await _find(request)
    body = await parse_body(request, ExtraSpecsBody)
    new = {k: str(v) for k, v in body.extra_specs.items()}
    await _save_specs(request, row, {**dict(row.extra_specs), **new})
    return web.json_response({"extra_specs": new})


async def extra_spec_show(request: web.Request) -> web.Response:
    row = await _find(request)
    key = request.match_info["key"]
    specs = dict(row.extra_specs)
    if key not in specs:
        raise NotFound(f"Flavor {row.flavorid} has no extra specs with key {key}.")
    return web.json_response({key: specs[key]})


async def extra_spec_update(request: web.Request) -> web.Response:
    context(request).require_admin()
    row = await _find(request)
    key = request.match_info["key"]
    body = await read_json(request) if request.can_read_body else None
    if not isinstance(body, dict) or list(body) != [key] or not isinstance(body[key], str | int):
        raise BadRequest("Request body and URI mismatch")
    await _save_specs(request, row, {**dict(row.extra_specs), key: str(body[key])})
    return web.json_response({key: str(body[key])})


async def extra_spec_delete(request: web.Request) -> web.Response:
    context(request).require_admin()
    row = await _find(request)
    key = request.match_info["key"]
    specs = dict(row.extra_specs)
    if key not in specs:
        raise NotFound(f"Flavor {row.flavorid} has no extra specs with key {key}.")
    del specs[key]
    await _save_specs(request, row, specs)
    return web.Response(status=200)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/flavors", index)
    app.router.add_post(f"{prefix}/flavors", create)
    app.router.add_get(f"{prefix}/flavors/detail", detail)
    app.router.add_get(f"{prefix}/flavors/{{flavor_id}}", show)
    app.router.add_delete(f"{prefix}/flavors/{{flavor_id}}", delete)
    specs = f"{prefix}/flavors/{{flavor_id}}/os-extra_specs"
    app.router.add_get(specs, extra_specs_index)
    app.router.add_post(specs, extra_specs_create)
    app.router.add_get(f"{specs}/{{key}}", extra_spec_show)
    app.router.add_put(f"{specs}/{{key}}", extra_spec_update)
    app.router.add_delete(f"{specs}/{{key}}", extra_spec_delete)
