"""Flavor access lists: GET /flavors/{id}/os-flavor-access, add/removeTenantAccess actions.

A private flavor (is_public false) is visible to, and usable by, admins and the projects on its
access list only; to everybody else it does not exist (404 on show, 400 on server create).
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import StringConstraints

from cloudd.api.auth import RequestContext
from cloudd.api.compute.common import context, database
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound, read_json, validate
from cloudd.api.compute.server_models import Strict
from cloudd.db import DuplicateError, Executor

ProjectId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]


class TenantAccess(Strict):
    tenant: ProjectId


async def may_use(db: Executor, flavor: dict[str, Any], ctx: RequestContext) -> bool:
    """Whether the caller's project may see and boot `flavor` (a flavors row)."""
    if flavor["is_public"] or ctx.is_admin:
        return True
    found = await db.fetchval(
        "SELECT COUNT(*) FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2",
        flavor["id"], ctx.project_id)
    return bool(found)


async def _flavor(request: web.Request) -> dict[str, Any]:
    flavorid = request.match_info["flavor_id"]
    row = await database(request).fetchrow(
        "SELECT * FROM flavors WHERE flavorid = $1 AND deleted = 0", flavorid)
    if row is None or not await may_use(database(request), row, context(request)):
        raise NotFound(f"Flavor {flavorid} could not be found.")
    return row


async def _access_list(db: Executor, flavor: dict[str, Any]) -> list[dict[str, str]]:
    rows = await db.fetch("SELECT project_id FROM flavor_projects WHERE flavor_id = $1"
                          " ORDER BY project_id", flavor["id"])
    return [{"flavor_id": str(flavor["flavorid"]), "tenant_id": r["project_id"]} for r in rows]


async def index(request: web.Request) -> web.Response:
    context(request).require_admin()
    flavor = await _flavor(request)
    if flavor["is_public"]:
        raise NotFound("Access list not available for public flavors.")
    return web.json_response({"flavor_access": await _access_list(database(request), flavor)})


async def _add(request: web.Request, flavor: dict[str, Any], project_id: str) -> None:
    if flavor["is_public"]:
        raise Conflict("Can not add access to a public flavor.")
    try:
        await database(request).execute(
            "INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)",
            flavor["id"], project_id)
    except DuplicateError:
        raise Conflict(f"Flavor access already exists for flavor {flavor['flavorid']} and "
                       f"project {project_id} combination.") from None


async def _remove(request: web.Request, flavor: dict[str, Any], project_id: str) -> None:
    removed = await database(request).execute(
        "DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2",
        flavor["id"], project_id)
    if not removed:
        raise NotFound(f"Flavor access not found for {flavor['flavorid']} / {project_id} "
                       "combination.")


async def action(request: web.Request) -> web.Response:
    context(request).require_admin()
    body = await read_json(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("An action body must be an object with exactly one action.")
    (name, args), = body.items()
    if name not in ("addTenantAccess", "removeTenantAccess"):
        raise BadRequest(f"There is no such action: {name}")
    project_id = validate(TenantAccess, args).tenant
    flavor = await _flavor(request)
    await (_add if name == "addTenantAccess" else _remove)(request, flavor, project_id)
    return web.json_response({"flavor_access": await _access_list(database(request), flavor)})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/flavors/{{flavor_id}}/os-flavor-access", index)
    app.router.add_post(f"{prefix}/flavors/{{flavor_id}}/action", action)
