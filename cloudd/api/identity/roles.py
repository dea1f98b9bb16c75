"""/v3/roles and role assignments of users on projects (admin only, as Keystone's defaults)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import TOKEN_CACHE, get_context, public_url, request_database
from cloudd.api.identity.errors import NotFound
from cloudd.api.identity.tokens import revoke_user_tokens
from cloudd.api.identity.views import collection_links, get_row, role_view
from cloudd.db import Executor, Row


async def list_roles(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    sql, args = "SELECT * FROM roles", []
    if "name" in request.query:
        sql, args = sql + " WHERE name = $1", [request.query["name"]]
    rows = await request_database(request).fetch(sql + " ORDER BY name", *args)
    return web.json_response({"roles": [role_view(request, row) for row in rows],
                              "links": collection_links(request)})


async def get_role(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    row = await get_row(request_database(request), "roles", request.match_info["role_id"], "role")
    return web.json_response({"role": role_view(request, row)})


async def _assignment_rows(request: web.Request) -> tuple[Executor, Row, Row]:
    """Check the admin policy and that project and user exist; return (db, project, user)."""
    get_context(request).require_admin()
    db = request_database(request)
    project = await get_row(db, "projects", request.match_info["project_id"], "project")
    user = await get_row(db, "users", request.match_info["user_id"], "user")
    return db, project, user


async def grant_role(request: web.Request) -> web.Response:
    db, project, user = await _assignment_rows(request)
    role = await get_row(db, "roles", request.match_info["role_id"], "role")
    await db.execute(
        "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING", user["id"], project["id"], role["id"])
    return web.Response(status=204)


async def revoke_role(request: web.Request) -> web.Response:
    db, project, user = await _assignment_rows(request)
    deleted = await db.execute(
        "DELETE FROM role_assignments WHERE user_id = $1 AND project_id = $2 AND role_id = $3",
        user["id"], project["id"], request.match_info["role_id"])
    if not deleted:
        raise NotFound(f"Could not find role assignment with role: "
                       f"{request.match_info['role_id']}, user or group: {user['id']}, "
                       f"project, domain, or system: {project['id']}.")
    # Tokens carry roles as issued: the user's tokens on that project must stop working.
    await revoke_user_tokens(db, user["id"], project["id"])
    TOKEN_CACHE.forget_user(user["id"])
    return web.Response(status=204)


async def check_role(request: web.Request) -> web.Response:
    db, project, user = await _assignment_rows(request)
    found = await db.fetchval(
        "SELECT count(*) FROM role_assignments WHERE user_id = $1 AND project_id = $2"
        " AND role_id = $3", user["id"], project["id"], request.match_info["role_id"])
    if not found:
        raise NotFound("Could not find role assignment.")
    return web.Response(status=204)


async def list_user_roles(request: web.Request) -> web.Response:
    db, project, user = await _assignment_rows(request)
    rows = await db.fetch(
        "SELECT r.* FROM roles r JOIN role_assignments a ON a.role_id = r.id"
        " WHERE a.user_id = $1 AND a.project_id = $2 ORDER BY r.name", user["id"], project["id"])
    return web.json_response({"roles": [role_view(request, row) for row in rows],
                              "links": collection_links(request)})


def _assignment_view(request: web.Request, row: Row, names: bool) -> dict[str, Any]:
    base = public_url(request) + "/identity/v3"
    role: dict[str, Any] = {"id": row["role_id"]}
    user: dict[str, Any] = {"id": row["user_id"]}
    project: dict[str, Any] = {"id": row["project_id"]}
    if names:
        domain = {"id": "default", "name": "Default"}
        role["name"] = row["role_name"]
        user.update(name=row["user_name"], domain=domain)
        project.update(name=row["project_name"], domain=domain)
    return {"role": role, "user": user, "scope": {"project": project}, "links": {
        "assignment": f"{base}/projects/{row['project_id']}/users/{row['user_id']}"
                      f"/roles/{row['role_id']}"}}


async def list_role_assignments(request: web.Request) -> web.Response:
    """GET /v3/role_assignments: admins see all; a user may list its own (user.id filter)."""
    context = get_context(request)
    query = request.query
    if query.get("user.id") != context.user_id:
        context.require_admin()
    filters = {"a.user_id": query.get("user.id"), "a.project_id": query.get("scope.project.id"),
               "a.role_id": query.get("role.id")}
    terms, args = [], []
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            terms.append(f"{column} = ${len(args)}")
    where = (" WHERE " + " AND ".join(terms)) if terms else ""
    rows = await request_database(request).fetch(
        "SELECT a.*, r.name AS role_name, u.name AS user_name, p.name AS project_name"
        " FROM role_assignments a JOIN roles r ON r.id = a.role_id"
        " JOIN users u ON u.id = a.user_id JOIN projects p ON p.id = a.project_id"
        + where + " ORDER BY p.name, u.name, r.name", *args)
    names = query.get("include_names", "false").lower() in ("", "1", "true")  # "?include_names"
    return web.json_response({
        "role_assignments": [_assignment_view(request, row, names) for row in rows],
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
