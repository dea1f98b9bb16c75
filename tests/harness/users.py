"""Users, projects and tokens of a cloud under test: password-auth bodies, tokens issued through
the Identity API, users with roles written straight to the database, EC2 credentials."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from cloudd.db import Database
from cloudd.identity.bootstrap import ensure_project, ensure_role
from cloudd.identity.passwords import hash_password

# The default domain by id, as the REST tests name it; the Identity tests name it by name.
DEFAULT_DOMAIN_ID = {"id": "default"}
DEFAULT_DOMAIN_NAME = {"name": "Default"}


def password_auth(user: str, password: str, project: str | None = None, *,
                  domain_ref: dict[str, str] | None = None, **scope: Any) -> dict[str, Any]:
    """A v3 password-auth body, scoped to `project` or to `scope`; user and project are in the
    default domain, named by `domain_ref` (by name unless told)."""
    domain = domain_ref or DEFAULT_DOMAIN_NAME
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": dict(domain), "password": password}}}}}
    if project is not None:
        body["auth"]["scope"] = {"project": {"name": project, "domain": dict(domain)}}
    elif scope:
        body["auth"]["scope"] = scope
    return body


async def issue_token(session: aiohttp.ClientSession, base: str, user: str, password: str,
                      project: str) -> str:
    """A project-scoped token from the Identity API at `base` (http://host:port)."""
    body = password_auth(user, password, project, domain_ref=DEFAULT_DOMAIN_ID)
    async with session.post(f"{base}/identity/v3/auth/tokens", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return resp.headers["X-Subject-Token"]


async def add_user(db: Database, project: str, roles: tuple[str, ...],
                   password: str = "secret") -> tuple[str, str]:
    """A new user with `roles` on `project` (created if needed): (user name, project id)."""
    project_id = await ensure_project(db, project)
    name = f"user-{uuid.uuid4().hex[:8]}"
    user_id = uuid.uuid4().hex
    await db.execute(
        "INSERT INTO users (id, name, password_hash, default_project_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5)", user_id, name, hash_password(password), project_id,
        time.time())
    for role in roles:
        await db.execute(
            "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)",
            user_id, project_id, await ensure_role(db, role))
    return name, project_id


@dataclass
class Keys:
    """EC2 credentials (for EC2 and S3)."""

    access: str
    secret: str
    project_id: str
    user_id: str = ""


Identity = Callable[..., Awaitable[Any]]  # identity(method, path, body) as the admin


async def member_keys(identity: Identity, project_id: str, role: str) -> Keys:
    """A new user with `role` on the project `project_id`, and an EC2 key of it there."""
    user_id = (await identity("POST", "/users", {"user": {
        "name": f"u-{uuid.uuid4().hex[:8]}", "password": "pw-secret"}}))["user"]["id"]
    role_id = (await identity("GET", f"/roles?name={role}"))["roles"][0]["id"]
    await identity("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")
    return await _ec2_key(identity, user_id, project_id)


async def ec2_credentials(identity: Identity, admin: dict[str, Any], project: str | None = None,
                          role: str = "member") -> Keys:
    """EC2 keys through the Identity API: the admin's (`admin`: bootstrap's credentials) in the
    admin project, or a new user's (with `role`) in a new project named after `project`."""
    if project is None:
        return await _ec2_key(identity, admin["user_id"], admin["project_id"])
    project_id = (await identity("POST", "/projects", {"project": {
        "name": f"{project}-{uuid.uuid4().hex[:6]}"}}))["project"]["id"]
    return await member_keys(identity, project_id, role)


async def _ec2_key(identity: Identity, user_id: str, project_id: str) -> Keys:
    cred = (await identity("POST", f"/users/{user_id}/credentials/OS-EC2",
                           {"tenant_id": project_id}))["credential"]
    return Keys(cred["access"], cred["secret"], project_id, user_id)
