"""Keystone's JSON views of projects, users, roles and domains."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import public_url, request_database
from cloudd.identity.projects import user_projects
from cloudd.identity.records import Project, Role, User


def _link(request: web.Request, collection: str, item_id: str) -> dict[str, str]:
    return {"self": f"{public_url(request)}/identity/v3/{collection}/{item_id}"}


def collection_links(request: web.Request) -> dict[str, Any]:
    return {"self": f"{public_url(request)}{request.rel_url.path}", "next": None,
            "previous": None}


def project_view(request: web.Request, project: Project) -> dict[str, Any]:
    return {"id": project.id, "name": project.name, "description": project.description,
            "domain_id": project.domain_id, "enabled": project.enabled, "is_domain": False,
            "parent_id": project.domain_id, "tags": [], "options": {},
            "links": _link(request, "projects", project.id)}


def user_view(request: web.Request, user: User) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": user.id, "name": user.name, "domain_id": user.domain_id, "enabled": user.enabled,
        "password_expires_at": None, "options": {}, "links": _link(request, "users", user.id)}
    if user.default_project_id:
        view["default_project_id"] = user.default_project_id
    if user.email:
        view["email"] = user.email
    return view


def role_view(request: web.Request, role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "domain_id": None, "description": None,
            "options": {}, "links": _link(request, "roles", role.id)}


def domain_view(request: web.Request) -> dict[str, Any]:
    return {"id": "default", "name": "Default", "description": "The default domain",
            "enabled": True, "tags": [], "options": {},
            "links": _link(request, "domains", "default")}


async def list_user_projects(request: web.Request, user_id: str) -> dict[str, Any]:
    found = await user_projects(request_database(request), user_id)
    return {"projects": [project_view(request, project) for project in found],
            "links": collection_links(request)}
