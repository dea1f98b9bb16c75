"""/v3/projects and /v3/domains: admins manage projects, members see their own.

The rules and the SQL are cloudd.identity.projects'; here: policy, bodies and views."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from cloudd.api.auth import get_context, request_database
from cloudd.api.identity.errors import NotFound, parse_body
from cloudd.api.identity.views import collection_links, domain_view, project_view
from cloudd.identity import projects
from cloudd.identity.token_cache import TOKEN_CACHE

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


async def list_projects(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    found = await projects.list_projects(request_database(request), request.query.get("name"))
    if request.query.get("domain_id", "default") != "default":
        found = []
    return web.json_response({"projects": [project_view(request, p) for p in found],
                              "links": collection_links(request)})


async def get_project(request: web.Request) -> web.Response:
    project_id = request.match_info["project_id"]
    context = get_context(request)
    if not (context.is_admin or context.project_id == project_id):
        context.require_admin()
    project = await projects.get_project(request_database(request), project_id)
    return web.json_response({"project": project_view(request, project)})


async def create_project(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    project = (await parse_body(request, ProjectBody)).project
    created = await projects.create_project(
        request_database(request), project.name, project.description or "", project.enabled,
        project.domain_id, project.parent_id)
    return web.json_response({"project": project_view(request, created)}, status=201)


async def update_project(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    project_id = request.match_info["project_id"]
    update = (await parse_body(request, ProjectUpdateBody)).project
    updated = await projects.update_project(request_database(request), project_id, update.name,
                                            update.description, update.enabled)
    if update.enabled is False:
        TOKEN_CACHE.clear()  # tokens scoped to it stop working now, not in a few seconds
    return web.json_response({"project": project_view(request, updated)})


async def delete_project(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    await projects.delete_project(request_database(request), request.match_info["project_id"])
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
