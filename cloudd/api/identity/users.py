"""/v3/users: admins manage users; a user may read itself, list its projects, change its password.

The rules and the SQL are cloudd.identity.users'; here: policy, bodies and views."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from cloudd.api.auth import get_context, request_database
from cloudd.api.identity.errors import parse_body
from cloudd.api.identity.views import collection_links, list_user_projects, user_view
from cloudd.identity import users
from cloudd.identity.policy import RequestContext
from cloudd.identity.token_cache import TOKEN_CACHE


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


async def list_users(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    found = await users.list_users(request_database(request), request.query.get("name"))
    return web.json_response({"users": [user_view(request, user) for user in found],
                              "links": collection_links(request)})


async def get_user(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    _require_self_or_admin(get_context(request), user_id)
    user = await users.get_user(request_database(request), user_id)
    return web.json_response({"user": user_view(request, user)})


async def create_user(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    user = (await parse_body(request, UserBody)).user
    created = await users.create_user(request_database(request), user.name, user.password,
                                      user.enabled, user.domain_id, user.default_project_id,
                                      user.email)
    return web.json_response({"user": user_view(request, created)}, status=201)


async def update_user(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    user_id = request.match_info["user_id"]
    update = (await parse_body(request, UserUpdateBody)).user
    updated = await users.update_user(request_database(request), user_id,
                                      update.model_dump(exclude_unset=True), update.password)
    if update.password or update.enabled is False:
        TOKEN_CACHE.forget_user(user_id)  # its tokens were revoked: the cache must not keep them
    return web.json_response({"user": user_view(request, updated)})


async def delete_user(request: web.Request) -> web.Response:
    get_context(request).require_admin()
    user_id = request.match_info["user_id"]
    await users.delete_user(request_database(request), user_id)
    TOKEN_CACHE.forget_user(user_id)
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    """POST /v3/users/{id}/password: a user changes its own password (Keystone's self-service)."""
    user_id = request.match_info["user_id"]
    if get_context(request).user_id != user_id:
        get_context(request).require_admin()
    change = (await parse_body(request, PasswordChangeBody)).user
    await users.change_password(request_database(request), user_id, change.original_password,
                                change.password)
    TOKEN_CACHE.forget_user(user_id)
    return web.Response(status=204)


async def user_projects(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    _require_self_or_admin(get_context(request), user_id)
    await users.get_user(request_database(request), user_id)
    return web.json_response(await list_user_projects(request, user_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v3/users", list_users)
    app.router.add_post("/v3/users", create_user)
    app.router.add_get("/v3/users/{user_id}", get_user)
    app.router.add_patch("/v3/users/{user_id}", update_user)
    app.router.add_delete("/v3/users/{user_id}", delete_user)
    app.router.add_post("/v3/users/{user_id}/password", change_password)
    app.router.add_get("/v3/users/{user_id}/projects", user_projects)
