"""EC2 credentials (OS-EC2 and the /v3/credentials view of them), and their lookup for S3/EC2."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloudd.api.auth import RequestContext, get_context, public_url, request_database
from cloudd.api.identity.errors import Forbidden, NotFound, parse_body
from cloudd.api.identity.tokens import effective_roles
from cloudd.api.identity.views import collection_links, get_row
from cloudd.db import Executor, Row


class Ec2Create(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tenant_id: str = Field(min_length=1)


async def lookup_ec2_credential(db: Executor, access: str) -> dict[str, Any] | None:
    """The credential with that access key, or None when no such key exists.

    Returns access, secret, user_id, user_name, project_id, project_name, enabled (its user
    and its project both are) and roles (the role names on the credential's project, implied
    ones included), read on every call so that a role removed or a user disabled stops the
    key at once. Callers refuse it when `credential_refusal` gives a reason.
    """
    row = await db.fetchrow(
        "SELECT c.*, u.name AS user_name, p.name AS project_name,"
        " u.enabled AS user_enabled, p.enabled AS project_enabled FROM ec2_credentials c"
        " JOIN users u ON u.id = c.user_id JOIN projects p ON p.id = c.project_id"
        " WHERE c.access = $1", access)
    if row is None:
        return None
    roles = await effective_roles(db, row["user_id"], row["project_id"])
    return {"access": row["access"], "secret": row["secret"], "user_id": row["user_id"],
            "user_name": row["user_name"], "project_id": row["project_id"],
            "project_name": row["project_name"],
            "enabled": bool(row["user_enabled"]) and bool(row["project_enabled"]),
            "roles": [role["name"] for role in roles]}


def credential_refusal(cred: dict[str, Any]) -> str | None:
    """Why a known credential may not be used at all (None: it may, within its roles).

    Nova's policies give nothing to a user without at least the reader role on the project,
    so neither do S3 and EC2; a disabled user or project is refused like Keystone refuses it.
    """
    if not cred["enabled"]:
        return "The user or project of this access key is disabled."
    if "reader" not in cred["roles"]:
        return "The user of this access key has no role on its project."
    return None


def _ec2_view(request: web.Request, row: Row) -> dict[str, Any]:
    return {"user_id": row["user_id"], "tenant_id": row["project_id"], "access": row["access"],
            "secret": row["secret"], "trust_id": None, "links": {
                "self": f"{public_url(request)}/identity/v3/users/{row['user_id']}"
                        f"/credentials/OS-EC2/{row['access']}"}}


def _credential_id(access: str) -> str:
    return hashlib.sha256(access.encode()).hexdigest()  # Keystone's id for an ec2 credential


def _credential_view(request: web.Request, row: Row) -> dict[str, Any]:
    cred_id = _credential_id(row["access"])
    return {"id": cred_id, "type": "ec2", "user_id": row["user_id"],
            "project_id": row["project_id"],
            "blob": json.dumps({"access": row["access"], "secret": row["secret"],
                                "trust_id": None}),
            "links": {"self": f"{public_url(request)}/identity/v3/credentials/{cred_id}"}}


def _owner_or_admin(request: web.Request) -> tuple[RequestContext, str]:
    context, user_id = get_context(request), request.match_info["user_id"]
    if context.user_id != user_id:
        context.require_admin()
    return context, user_id


async def create_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    body = await parse_body(request, Ec2Create)
    db = request_database(request)
    await get_row(db, "users", user_id, "user")
    await get_row(db, "projects", body.tenant_id, "project")
    # A credential for a project its user has no role on would never authorize anything.
    if not await effective_roles(db, user_id, body.tenant_id):
        raise Forbidden(f"User {user_id} has no role on project {body.tenant_id}.")
    access, secret = uuid.uuid4().hex, uuid.uuid4().hex
    await db.execute(
        "INSERT INTO ec2_credentials (access, secret, user_id, project_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5)", access, secret, user_id, body.tenant_id, time.time())
    row = await db.fetchrow("SELECT * FROM ec2_credentials WHERE access = $1", access)
    assert row is not None
    return web.json_response({"credential": _ec2_view(request, row)}, status=201)


async def list_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    rows = await request_database(request).fetch(
        "SELECT * FROM ec2_credentials WHERE user_id = $1 ORDER BY created_at", user_id)
    return web.json_response({"credentials": [_ec2_view(request, row) for row in rows],
                              "links": collection_links(request)})


async def _ec2_row(request: web.Request, user_id: str) -> Row:
    access = request.match_info["access"]
    row = await request_database(request).fetchrow(
        "SELECT * FROM ec2_credentials WHERE access = $1 AND user_id = $2", access, user_id)
    if row is None:
        raise NotFound(f"Could not find credential: {access}.")
    return row


async def get_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    return web.json_response({"credential": _ec2_view(request, await _ec2_row(request, user_id))})


async def delete_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    row = await _ec2_row(request, user_id)
    await request_database(request).execute("DELETE FROM ec2_credentials WHERE access = $1",
                                            row["access"])
    return web.Response(status=204)


async def list_credentials(request: web.Request) -> web.Response:
    """GET /v3/credentials: ec2 is the only type; users see their own, admins everyone's."""
    context = get_context(request)
    user_id = request.query.get("user_id")
    if user_id != context.user_id and not context.is_admin:
        user_id = context.user_id
    rows: list[Row] = []
    if request.query.get("type", "ec2") == "ec2":
        sql = "SELECT * FROM ec2_credentials"
        args = [user_id] if user_id else []
        rows = await request_database(request).fetch(
            sql + (" WHERE user_id = $1" if user_id else "") + " ORDER BY created_at", *args)
    return web.json_response({"credentials": [_credential_view(request, r) for r in rows],
                              "links": collection_links(request)})


async def get_credential(request: web.Request) -> web.Response:
    context = get_context(request)
    wanted = request.match_info["credential_id"]
    rows = await request_database(request).fetch(
        "SELECT * FROM ec2_credentials" + ("" if context.is_admin else " WHERE user_id = $1"),
        *([] if context.is_admin else [context.user_id]))
    for row in rows:
        if _credential_id(row["access"]) == wanted:
            return web.json_response({"credential": _credential_view(request, row)})
    raise NotFound(f"Could not find credential: {wanted}.")


def add_routes(app: web.Application) -> None:
    base = "/v3/users/{user_id}/credentials/OS-EC2"
    app.router.add_post(base, create_ec2)
    app.router.add_get(base, list_ec2)
    app.router.add_get(base + "/{access}", get_ec2)
    app.router.add_delete(base + "/{access}", delete_ec2)
    app.router.add_get("/v3/credentials", list_credentials)
    app.router.add_get("/v3/credentials/{credential_id}", get_credential)
