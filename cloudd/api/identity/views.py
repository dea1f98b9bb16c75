"""Keystone's JSON views of projects, users, roles and domains, and the shared lookups."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import public_url, request_database
from cloudd.api.identity.errors import NotFound
from cloudd.db import Executor, Row


def _link(request: web.Request, collection: str, item_id: str) -> dict[str, str]:
    return {"self": f"{public_url(request)}/identity/v3/{collection}/{item_id}"}


def collection_links(request: web.Request) -> dict[str, Any]:
    return {"self": f"{public_url(request)}{request.rel_url.path}", "next": None,
            "previous": None}


def project_view(request: web.Request, row: Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"],
            "domain_id": row["domain_id"], "enabled": bool(row["enabled"]), "is_domain": False,
            "parent_id": row["domain_id"], "tags": [], "options": {},
            "links": _link(request, "projects", row["id"])}


def user_view(request: web.Request, row: Row) -> dict[str, Any]:
    view = {"id": row["id"], "name": row["name"], "domain_id": row["domain_id"],
            "enabled": bool(row["enabled"]), "password_expires_at": None, "options": {},
            "links": _link(request, "users", row["id"])}
    if row.get("default_project_id"):
        view["default_project_id"] = row["default_project_id"]
    if row.get("email"):
        view["email"] = row["email"]
    return view


def role_view(request: web.Request, row: Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "domain_id": None, "description": None,
            "options": {}, "links": _link(request, "roles", row["id"])}


def domain_view(request: web.Request) -> dict[str, Any]:
    return {"id": "default", "name": "Default", "description": "The default domain",
            "enabled": True, "tags": [], "options": {},
            "links": _link(request, "domains", "default")}


async def get_row(db: Executor, table: str, item_id: str, kind: str) -> Row:
    """The row of `table` with that id, or Keystone's 404."""
    # `table` is always one of our literal names, never client input.
    row = await db.fetchrow(f"SELECT * FROM {table} WHERE id = $1", item_id)
    if row is None:
        raise NotFound(f"Could not find {kind}: {item_id}.")
    return row


async def list_user_projects(request: web.Request, user_id: str) -> dict[str, Any]:
    rows = await request_database(request).fetch(
        "SELECT * FROM projects WHERE id IN"
        " (SELECT project_id FROM role_assignments WHERE user_id = $1) ORDER BY name", user_id)
    return {"projects": [project_view(request, row) for row in rows],
            "links": collection_links(request)}
