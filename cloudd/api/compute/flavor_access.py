"""Flavor access lists: GET /flavors/{id}/os-flavor-access, add/removeTenantAccess actions.

A private flavor (is_public false) is visible to, and usable by, admins and the projects on its
access list only; to everybody else it does not exist (404 on show, 400 on server create).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import StringConstraints

from cloudd.api.compute.common import context, database
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound, read_json, validate
from cloudd.api.compute.server_models import Strict
from cloudd.compute import flavors
from cloudd.compute.flavors import Flavor
from cloudd.db import DuplicateError, Executor

ProjectId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]


class TenantAccess(Strict):
    tenant: ProjectId


async def visible_flavor(request: web.Request) -> Flavor:
    """The flavor of the URL's flavor_id, if the caller may see it (404 otherwise)."""
    flavorid = request.match_info["flavor_id"]
    ctx = context(request)
    flavor = await flavors.get(database(request), flavorid)
    if flavor is None or not await flavors.may_use(database(request), flavor, ctx.project_id,
                                                   ctx.is_admin):
        raise NotFound(f"Flavor {flavorid} could not be found.")
    return flavor


async def _access_list(db: Executor, flavor: Flavor) -> list[dict[str, str]]:
    return [{"flavor_id": flavor.flavorid, "tenant_id": project_id}
            for project_id in await flavors.access_list(db, flavor.id)]


async def index(request: web.Request) -> web.Response:
    context(request).require_admin()
    flavor = await visible_flavor(request)
    if flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    return web.json_response({"flavor_access": await _access_list(database(request), flavor)})


async def _add(request: web.Request, flavor: Flavor, project_id: str) -> None:
    if flavor.is_public:
        raise Conflict("Can not add access to a public flavor.")
    try:
        await flavors.add_access(database(request), flavor.id, project_id)
    except DuplicateError:
        raise Conflict(f"Flavor access already exists for flavor {flavor.flavorid} and "
                       f"project {project_id} combination.") from None


async def _remove(request: web.Request, flavor: Flavor, project_id: str) -> None:
    if not await flavors.remove_access(database(request), flavor.id, project_id):
        raise NotFound(f"Flavor access not found for {flavor.flavorid} / {project_id} "
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
    flavor = await visible_flavor(request)
    await (_add if name == "addTenantAccess" else _remove)(request, flavor, project_id)
    return web.json_response({"flavor_access": await _access_list(database(request), flavor)})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/flavors/{{flavor_id}}/os-flavor-access", index)
    app.router.add_post(f"{prefix}/flavors/{{flavor_id}}/action", action)
