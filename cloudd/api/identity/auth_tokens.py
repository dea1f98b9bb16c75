"""/v3/auth/tokens: issue (password or token method), validate, check and revoke tokens."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from cloudd.api.auth import get_context, request_database
from cloudd.api.identity.catalog import build_catalog
from cloudd.api.identity.errors import BadRequest, NotFound, Unauthorized, parse_body
from cloudd.api.identity.views import list_user_projects
from cloudd.api.keys import HOST_KEY
from cloudd.config.models import IdentitySection
from cloudd.db import Executor
from cloudd.identity import scoping
from cloudd.identity.lockout import LoginThrottle
from cloudd.identity.passwords import hash_password, verify_password
from cloudd.identity.records import Project, TokenData, User
from cloudd.identity.token_cache import TOKEN_CACHE, validate_token
from cloudd.identity.tokens import issue_token, revoke_token, token_body

LOG = logging.getLogger(__name__)
AUTH_FAILED = "The request you have made requires authentication."
# One per identity application (so per controller process, and fresh for each test cloud).
THROTTLE_KEY = web.AppKey("identity_login_throttle", LoginThrottle)
LOCKED = ("This account or client address is temporarily locked out after too many failed "
          "authentication attempts.")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DomainRef(_Lenient):
    id: str | None = None
    name: str | None = None


class UserRef(_Lenient):
    id: str | None = None
    name: str | None = None
    domain: DomainRef | None = None
    password: str


class PasswordMethod(_Lenient):
    user: UserRef


class TokenMethod(_Lenient):
    id: str


class Identity(_Lenient):
    methods: list[str]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(_Lenient):
    id: str | None = None
    name: str | None = None
    domain: DomainRef | None = None


class Scope(_Lenient):
    project: ProjectRef | None = None


class Auth(_Lenient):
    identity: Identity
    scope: Scope | Literal["unscoped"] | None = None


class AuthRequest(_Lenient):
    auth: Auth


def resolve_domain(domain: DomainRef | None) -> str:
    """Only the Default domain exists; anything else fails authentication like Keystone's."""
    if domain is None:
        raise BadRequest("A name needs a domain (domain.id or domain.name).")
    if domain.id == "default" or (domain.id is None and domain.name == "Default"):
        return "default"
    raise Unauthorized(AUTH_FAILED)


async def _dummy_hash() -> str:
    """A stored-password hash of nobody's password, with the parameters of real ones: the
    unknown-user path verifies against it so that it costs what a wrong password costs."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = await asyncio.to_thread(hash_password, secrets.token_urlsafe(18))
    return _DUMMY_HASH


_DUMMY_HASH: str | None = None


def _throttle_limits(request: web.Request, ref: UserRef, user: User | None,
                     cfg: IdentitySection) -> dict[str, int]:
    """The throttle's keys for this attempt and their lockout thresholds: the user (by id once
    found, so its name and id share one count) and the client address."""
    who = f"id:{user.id}" if user else f"id:{ref.id}" if ref.id else f"name:{ref.name}"
    return {"user " + who: cfg.lockout_failure_attempts,
            f"address {request.remote or 'unknown'}": cfg.lockout_failure_attempts_per_address}


async def _password_user(request: web.Request, db: Executor, ref: UserRef) -> User:
    if ref.id:
        user = await scoping.find_user(db, ref.id)
    elif ref.name:
        user = await scoping.find_user(db, None, ref.name, resolve_domain(ref.domain))
    else:
        raise BadRequest("password.user needs an id or a name.")
    cfg, throttle = request.config_dict[HOST_KEY].config.identity, request.app[THROTTLE_KEY]
    limits = _throttle_limits(request, ref, user, cfg)
    if (left := throttle.locked_for(tuple(limits), cfg)) > 0:
        raise Unauthorized(f"{LOCKED} Try again in {math.ceil(left)} seconds.")
    # Same answer, and the same scrypt work (~50 ms of CPU, off the event loop), for an unknown
    # user and a wrong password: neither the body nor the time tells whether the user exists.
    stored = user.password_hash if user is not None else await _dummy_hash()
    matches = await asyncio.to_thread(verify_password, ref.password, stored)
    if user is None or not matches:
        LOG.info("password authentication failed for user %s from %s", ref.id or ref.name,
                 request.remote)
        await asyncio.sleep(throttle.failed(limits, cfg))  # the loop keeps serving
        raise Unauthorized(AUTH_FAILED)
    throttle.succeeded(next(iter(limits)))
    if not user.enabled:
        raise Unauthorized(f"User {user.id} is disabled.")
    return user


async def _scope_project(db: Executor, user: User,
                         scope: Scope | str | None) -> Project | None:
    """The project the token is for: as asked, else the user's default project, else none."""
    if scope == "unscoped":
        return None
    if isinstance(scope, Scope) and scope.project is not None:
        ref = scope.project
        if ref.id:
            project = await scoping.find_project(db, ref.id)
        elif ref.name:
            project = await scoping.find_project(db, None, ref.name, resolve_domain(ref.domain))
        else:
            raise BadRequest("scope.project needs an id or a name.")
        return await scoping.check_scope(db, user, project, str(ref.id or ref.name))
    return await scoping.default_scope(db, user)


async def create_token(request: web.Request) -> web.Response:
    body = await parse_body(request, AuthRequest)
    identity = body.auth.identity
    db = request_database(request)
    parent: TokenData | None = None
    if "password" in identity.methods and identity.password is not None:
        user = await _password_user(request, db, identity.password.user)
        methods = ["password"]
    elif "token" in identity.methods and identity.token is not None:
        parent = await validate_token(db, identity.token.id)
        if parent is None:
            raise Unauthorized(AUTH_FAILED)
        found = await scoping.find_user(db, parent.user.id)
        if found is None:
            raise Unauthorized(AUTH_FAILED)
        user, methods = found, list(parent.methods)
    else:
        raise BadRequest("Supported methods are password and token, with their details.")
    project = await _scope_project(db, user, body.auth.scope)
    host = request.config_dict[HOST_KEY]
    token, data = await issue_token(db, user, project, methods,
                                    host.config.api.token_expiration, parent)
    catalog = None if "nocatalog" in request.query else build_catalog(host)
    return web.json_response(token_body(data, catalog), status=201,
                             headers={"X-Subject-Token": token})


async def _subject(request: web.Request) -> TokenData:
    """The token named by X-Subject-Token, which only its owner or an admin may see."""
    subject = request.headers.get("X-Subject-Token", "")
    if not subject:
        raise BadRequest("X-Subject-Token header is required.")
    context = get_context(request)
    data = await validate_token(request_database(request), subject)
    if data is None or not (context.is_admin or data.user.id == context.user_id):
        raise NotFound("Could not find token.")
    return data


async def get_token(request: web.Request) -> web.Response:
    data = await _subject(request)
    catalog = None if "nocatalog" in request.query else build_catalog(
        request.config_dict[HOST_KEY])
    return web.json_response(token_body(data, catalog),
                             headers={"X-Subject-Token": request.headers["X-Subject-Token"]})


async def check_token(request: web.Request) -> web.Response:
    await _subject(request)
    return web.Response(status=200)


async def delete_token(request: web.Request) -> web.Response:
    data = await _subject(request)
    for id_hash in await revoke_token(request_database(request), data):
        TOKEN_CACHE.forget(id_hash)
    return web.Response(status=204)


async def auth_projects(request: web.Request) -> web.Response:
    """GET /v3/auth/projects: the projects the caller has a role on."""
    context = get_context(request)
    return web.json_response(await list_user_projects(request, context.user_id))


async def auth_catalog(request: web.Request) -> web.Response:
    catalog: list[dict[str, Any]] = build_catalog(request.config_dict[HOST_KEY])
    return web.json_response({"catalog": catalog, "links": {
        "self": str(request.url), "next": None, "previous": None}})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v3/auth/tokens", create_token)
    app.router.add_get("/v3/auth/tokens", get_token, allow_head=False)
    app.router.add_route("HEAD", "/v3/auth/tokens", check_token)
    app.router.add_delete("/v3/auth/tokens", delete_token)
    app.router.add_get("/v3/auth/projects", auth_projects)
    app.router.add_get("/v3/auth/catalog", auth_catalog)

