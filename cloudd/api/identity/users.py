"""/v3/users: admins manage users; a user may read itself, list its projects, change its password."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from cloudd.api.auth import TOKEN_CACHE, RequestContext, get_context, request_database
from cloudd.api.identity.errors import Conflict, NotFound, Unauthorized, parse_body
from cloudd.api.identity.passwords import hash_password, verify_password
from cloudd.api.identity.projects import check_domain
from cloudd.api.identity.tokens import revoke_user_tokens
from cloudd.api.identity.views import collection_links, get_row, list_user_projects, user_view
from cloudd.db import DuplicateError


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=255)
    password: str | None = Field(None, max_length=4096)
    enabled: StrictBool = True
    domain_id: str | None = None
    default_project_id: str | None = None
    email: str | None = None


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = Field(None, max_length=4096)
    enabled: StrictBool | None = None
    default_project_id: str | None = None
    email: str | None = None


class UserBody(BaseModel):
    user: UserCreate


class UserUpdateBody(BaseModel):
    user: UserUpdate


class PasswordChange(BaseModel):
    password: str = Field(min_length=1, max_length=4096)
    original_password: str


class PasswordChangeBody(BaseModel):
    user: PasswordChange


def _require_self_or_admin(context: RequestContext, user_id: str) -> None:
    if context.user_id != user_id:
        context.require_admin()


def _duplicate(name: str | None) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store user - Duplicate entry {name}.")


async def list_users(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    sql, args = "SELECT * FROM users", []
    if "name" in request.query:
        sql, args = sql + " WHERE name = $1", [request.query["name"]]
    rows = await request_database(request).fetch(sql + " ORDER BY name", *args)
    return web.json_response({"users": [user_view(request, row) for row in rows],
                              "links": collection_links(request)})


async def get_user(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    _require_self_or_admin(get_context(request), user_id)
    row = await get_row(request_database(request), "users", user_id, "user")
    return web.json_response({"user": user_view(request, row)})


async def create_user(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    user = (await parse_body(request, UserBody)).user
    check_domain(user.domain_id)
    db = request_database(request)
    if user.default_project_id:
        await get_row(db, "projects", user.default_project_id, "project")
    user_id = uuid.uuid4().hex
    # No password: a random one nobody knows, so the user cannot log in until one is set.
    password_hash = await asyncio.to_thread(
        hash_password, user.password if user.password else uuid.uuid4().hex * 2)
    try:
        await db.execute(
            "INSERT INTO users (id, name, password_hash, default_project_id, email, enabled,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            user_id, user.name, password_hash, user.default_project_id, user.email,
            int(user.enabled), time.time())
    except DuplicateError:
        raise _duplicate(user.name) from None
    row = await get_row(db, "users", user_id, "user")
    return web.json_response({"user": user_view(request, row)}, status=201)


async def update_user(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    user_id = request.match_info["user_id"]
    update = (await parse_body(request, UserUpdateBody)).user
    db = request_database(request)
    row = await get_row(db, "users", user_id, "user")
    changes: dict[str, Any] = {k: v for k, v in update.model_dump(exclude_unset=True).items()
                               if k != "password"}
    if "enabled" in changes:
        changes["enabled"] = int(bool(changes["enabled"]))
    if update.password:
        changes["password_hash"] = await asyncio.to_thread(hash_password, update.password)
    if changes.get("default_project_id"):
        await get_row(db, "projects", changes["default_project_id"], "project")
    if changes:
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, 1))
        try:
            # Column names come from the pydantic model's fields, never from the client.
            await db.execute(f"UPDATE users SET {assignments} WHERE id = ${len(changes) + 1}",
                             *changes.values(), user_id)
        except DuplicateError:
            raise _duplicate(update.name) from None
    if update.password or update.enabled is False:
        await revoke_user_tokens(db, user_id)  # as Keystone does when credentials change
        TOKEN_CACHE.forget_user(user_id)
    row = await get_row(db, "users", user_id, "user")
    return web.json_response({"user": user_view(request, row)})


async def delete_user(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    user_id = request.match_info["user_id"]
    if not await request_database(request).execute("DELETE FROM users WHERE id = $1", user_id):
        raise NotFound(f"Could not find user: {user_id}.")
    TOKEN_CACHE.forget_user(user_id)
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    """POST /v3/users/{id}/password: a user changes its own password (Keystone's self-service)."""
    user_id = request.match_info["user_id"]
    if get_context(request).user_id != user_id:
        get_context(request).require_admin()
    change = (await parse_body(request, PasswordChangeBody)).user
    db = request_database(request)
    row = await get_row(db, "users", user_id, "user")
    if not await asyncio.to_thread(verify_password, change.original_password,
                                   str(row["password_hash"])):
        raise Unauthorized("The original password is not correct.")
    await db.execute("UPDATE users SET password_hash = $1 WHERE id = $2",
                     await asyncio.to_thread(hash_password, change.password), user_id)
    await revoke_user_tokens(db, user_id)
    TOKEN_CACHE.forget_user(user_id)
    return web.Response(status=204)


async def user_projects(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    _require_self_or_admin(get_context(request), user_id)
    await get_row(request_database(request), "users", user_id, "user")
    return web.json_response(await list_user_projects(request, user_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v3/users", list_users)
    app.router.add_post("/v3/users", create_user)
    app.router.add_get("/v3/users/{user_id}", get_user)
    app.router.add_patch("/v3/users/{user_id}", update_user)
    app.router.add_delete("/v3/users/{user_id}", delete_user)
    app.router.add_post("/v3/users/{user_id}/password", change_password)
    app.router.add_get("/v3/users/{user_id}/projects", user_projects)
