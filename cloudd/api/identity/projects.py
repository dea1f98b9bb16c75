"""/v3/projects and /v3/domains: admins manage projects, members see their own."""

from __future__ import annotations

import time
import uuid

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from cloudd.api.auth import TOKEN_CACHE, get_context, request_database
from cloudd.api.identity.errors import BadRequest, Conflict, NotFound, parse_body
from cloudd.api.identity.views import (
    collection_links,
    domain_view,
    get_row,
    project_view,
)
from cloudd.db import DuplicateError

NAME = Field(min_length=1, max_length=64)


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = NAME
    description: str | None = Field(None, max_length=4096)
    enabled: StrictBool = True
    domain_id: str | None = None
    parent_id: str | None = None


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, max_length=4096)
    enabled: StrictBool | None = None


class ProjectBody(BaseModel):
    project: ProjectCreate


class ProjectUpdateBody(BaseModel):
    project: ProjectUpdate


def check_domain(domain_id: str | None) -> None:
    if domain_id not in (None, "default"):
        raise BadRequest(f"Domain {domain_id} does not exist: only 'default' is supported.")


async def list_projects(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    sql, args = "SELECT * FROM projects", []
    if "name" in request.query:
        sql, args = sql + " WHERE name = $1", [request.query["name"]]
    rows = await request_database(request).fetch(sql + " ORDER BY name", *args)
    if request.query.get("domain_id", "default") != "default":
        rows = []
    return web.json_response({"projects": [project_view(request, row) for row in rows],
                              "links": collection_links(request)})


async def get_project(request: web.Request) -> web.Response:
    project_id = request.match_info["project_id"]
    context = get_context(request)
    if not (context.is_admin or context.project_id == project_id):
        context.require_admin()
    row = await get_row(request_database(request), "projects", project_id, "project")
    return web.json_response({"project": project_view(request, row)})


async def create_project(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    project = (await parse_body(request, ProjectBody)).project
    check_domain(project.domain_id)
    if project.parent_id not in (None, "default"):
        raise BadRequest("Nested projects are not supported.")
    project_id = uuid.uuid4().hex
    db = request_database(request)
    try:
        await db.execute(
            "INSERT INTO projects (id, name, description, enabled, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            project_id, project.name, project.description or "", int(project.enabled), time.time())
    except DuplicateError:
        raise Conflict(f"Conflict occurred attempting to store project - duplicate name "
                       f"{project.name}.") from None
    row = await get_row(db, "projects", project_id, "project")
    return web.json_response({"project": project_view(request, row)}, status=201)


async def update_project(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    project_id = request.match_info["project_id"]
    update = (await parse_body(request, ProjectUpdateBody)).project
    db = request_database(request)
    row = await get_row(db, "projects", project_id, "project")
    try:
        await db.execute(
            "UPDATE projects SET name = $1, description = $2, enabled = $3 WHERE id = $4",
            update.name if update.name is not None else row["name"],
            update.description if update.description is not None else row["description"],
            int(update.enabled) if update.enabled is not None else row["enabled"], project_id)
    except DuplicateError:
        raise Conflict(f"Conflict occurred attempting to store project - duplicate name "
                       f"{update.name}.") from None
    if update.enabled is False:
        TOKEN_CACHE.clear()  # tokens scoped to it stop working now, not in a few seconds
    row = await get_row(db, "projects", project_id, "project")
    return web.json_response({"project": project_view(request, row)})


async def delete_project(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    project_id = request.match_info["project_id"]
    deleted = await request_database(request).execute("DELETE FROM projects WHERE id = $1",
                                                      project_id)
    if not deleted:
        raise NotFound(f"Could not find project: {project_id}.")
    TOKEN_CACHE.clear()
    return web.Response(status=204)


async def list_domains(request: web.Request) -> web.Response:
    get_context(request)
    name = request.query.get("name")
    domains = [domain_view(request)] if name in (None, "Default") else []
    return web.json_response({"domains": domains, "links": collection_links(request)})


async def get_domain(request: web.Request) -> web.Response:
    get_context(request)
    if request.match_info["domain_id"] != "default":
        raise NotFound(f"Could not find domain: {request.match_info['domain_id']}.")
    return web.json_response({"domain": domain_view(request)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v3/projects", list_projects)
    app.router.add_post("/v3/projects", create_project)
    app.router.add_get("/v3/projects/{project_id}", get_project)
    app.router.add_patch("/v3/projects/{project_id}", update_project)
    app.router.add_delete("/v3/projects/{project_id}", delete_project)
    app.router.add_get("/v3/domains", list_domains)
    app.router.add_get("/v3/domains/{domain_id}", get_domain)
