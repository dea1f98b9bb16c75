"""/v3/roles and role assignments of users on projects (admin only, as Keystone's defaults).

The rules and the SQL are cloudd.identity.roles'; here: policy and views."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import get_context, public_url, request_database
from cloudd.api.identity.views import collection_links, role_view
from cloudd.db import Executor
from cloudd.identity import roles
from cloudd.identity.records import RoleAssignment
from cloudd.identity.token_cache import TOKEN_CACHE


async def list_roles(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    found = await roles.list_roles(request_database(request), request.query.get("name"))
    return web.json_response({"roles": [role_view(request, role) for role in found],
                              "links": collection_links(request)})


async def get_role(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    role = await roles.get_role(request_database(request), request.match_info["role_id"])
    return web.json_response({"role": role_view(request, role)})


def _assignment(request: web.Request) -> tuple[Executor, str, str, str]:
    """Check the admin policy; return (db, project id, user id, role id) from the path."""
    get_context(request).require_admin()
    match = request.match_info
    return (request_database(request), match["project_id"], match["user_id"],
            match.get("role_id", ""))


async def grant_role(request: web.Request) -> web.Response:
    await roles.grant_role(*_assignment(request))
    return web.Response(status=204)


async def revoke_role(request: web.Request) -> web.Response:
    db, project_id, user_id, role_id = _assignment(request)
    await roles.revoke_role(db, project_id, user_id, role_id)
    TOKEN_CACHE.forget_user(user_id)  # its tokens on the project were revoked
    return web.Response(status=204)


async def check_role(request: web.Request) -> web.Response:
    await roles.check_role(*_assignment(request))
    return web.Response(status=204)


async def list_user_roles(request: web.Request) -> web.Response:
    db, project_id, user_id, _ = _assignment(request)
    found = await roles.user_roles(db, project_id, user_id)
    return web.json_response({"roles": [role_view(request, role) for role in found],
                              "links": collection_links(request)})


def _assignment_view(request: web.Request, assignment: RoleAssignment,
                     names: bool) -> dict[str, Any]:
    base = public_url(request) + "/identity/v3"
    role: dict[str, Any] = {"id": assignment.role_id}
    user: dict[str, Any] = {"id": assignment.user_id}
    project: dict[str, Any] = {"id": assignment.project_id}
    if names:
        domain = {"id": "default", "name": "Default"}
        role["name"] = assignment.role_name
        user.update(name=assignment.user_name, domain=domain)
        project.update(name=assignment.project_name, domain=domain)
    return {"role": role, "user": user, "scope": {"project": project}, "links": {
        "assignment": f"{base}/projects/{assignment.project_id}/users/{assignment.user_id}"
                      f"/roles/{assignment.role_id}"}}


async def list_role_assignments(request: web.Request) -> web.Response:
    """GET /v3/role_assignments: admins see all; a user may list its own (user.id filter)."""
    context = get_context(request)
    query = request.query
    if query.get("user.id") != context.user_id:
        context.require_admin()
    found = await roles.list_role_assignments(
        request_database(request), query.get("user.id"), query.get("scope.project.id"),
        query.get("role.id"))
    names = query.get("include_names", "false").lower() in ("", "1", "true")  # "?include_names"
    return web.json_response({
        "role_assignments": [_assignment_view(request, a, names) for a in found],
        "links": collection_links(request)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v3/roles", list_roles)
    app.router.add_get("/v3/roles/{role_id}", get_role)
    assignment = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
    app.router.add_put(assignment, grant_role)
    app.router.add_delete(assignment, revoke_role)
    app.router.add_route("HEAD", assignment, check_role)
    app.router.add_get(assignment, check_role, allow_head=False)
    app.router.add_get("/v3/projects/{project_id}/users/{user_id}/roles", list_user_roles)
    app.router.add_get("/v3/role_assignments", list_role_assignments)
