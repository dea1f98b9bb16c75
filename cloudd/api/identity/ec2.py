"""EC2 credentials over HTTP: OS-EC2 and the /v3/credentials view of them.

Their storage and their lookup by S3/EC2 live in cloudd.identity.credentials."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloudd.api.auth import get_context, public_url, request_database
from cloudd.api.identity.errors import Forbidden, NotFound, parse_body
from cloudd.api.identity.views import collection_links
from cloudd.identity.credentials import (
    create_ec2_credential,
    credential_id,
    delete_ec2_credential,
    get_user_ec2_credential,
    list_ec2_credentials,
)
from cloudd.identity.policy import RequestContext
from cloudd.identity.projects import get_project
from cloudd.identity.records import Ec2Credential
from cloudd.identity.tokens import effective_roles
from cloudd.identity.users import get_user


class Ec2Create(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tenant_id: str = Field(min_length=1)


def _ec2_view(request: web.Request, cred: Ec2Credential) -> dict[str, Any]:
    return {"user_id": cred.user_id, "tenant_id": cred.project_id, "access": cred.access,
            "secret": cred.secret, "trust_id": None, "links": {
                "self": f"{public_url(request)}/identity/v3/users/{cred.user_id}"
                        f"/credentials/OS-EC2/{cred.access}"}}


def _credential_view(request: web.Request, cred: Ec2Credential) -> dict[str, Any]:
    cred_id = credential_id(cred.access)
    return {"id": cred_id, "type": "ec2", "user_id": cred.user_id,
            "project_id": cred.project_id,
            "blob": json.dumps({"access": cred.access, "secret": cred.secret,
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
    await get_user(db, user_id)
    await get_project(db, body.tenant_id)
    # A credential for a project its user has no role on would never authorize anything.
    if not await effective_roles(db, user_id, body.tenant_id):
        raise Forbidden(f"User {user_id} has no role on project {body.tenant_id}.")
    cred = await create_ec2_credential(db, user_id, body.tenant_id)
    return web.json_response({"credential": _ec2_view(request, cred)}, status=201)


async def list_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    found = await list_ec2_credentials(request_database(request), user_id)
    return web.json_response({"credentials": [_ec2_view(request, cred) for cred in found],
                              "links": collection_links(request)})


async def _ec2_credential(request: web.Request, user_id: str) -> Ec2Credential:
    access = request.match_info["access"]
    cred = await get_user_ec2_credential(request_database(request), user_id, access)
    if cred is None:
        raise NotFound(f"Could not find credential: {access}.")
    return cred


async def get_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    cred = await _ec2_credential(request, user_id)
    return web.json_response({"credential": _ec2_view(request, cred)})


async def delete_ec2(request: web.Request) -> web.Response:
    _, user_id = _owner_or_admin(request)
    cred = await _ec2_credential(request, user_id)
    await delete_ec2_credential(request_database(request), cred.access)
    return web.Response(status=204)


async def list_credentials(request: web.Request) -> web.Response:
    """GET /v3/credentials: ec2 is the only type; users see their own, admins everyone's."""
    context = get_context(request)
    user_id = request.query.get("user_id")
    if user_id != context.user_id and not context.is_admin:
        user_id = context.user_id
    found: list[Ec2Credential] = []
    if request.query.get("type", "ec2") == "ec2":
        found = await list_ec2_credentials(request_database(request), user_id or None)
    return web.json_response({"credentials": [_credential_view(request, c) for c in found],
                              "links": collection_links(request)})


async def get_credential(request: web.Request) -> web.Response:
    context = get_context(request)
    wanted = request.match_info["credential_id"]
    found = await list_ec2_credentials(request_database(request),
                                       None if context.is_admin else context.user_id)
    for cred in found:
        if credential_id(cred.access) == wanted:
            return web.json_response({"credential": _credential_view(request, cred)})
    raise NotFound(f"Could not find credential: {wanted}.")


def add_routes(app: web.Application) -> None:
    base = "/v3/users/{user_id}/credentials/OS-EC2"
    app.router.add_post(base, create_ec2)
    app.router.add_get(base, list_ec2)
    app.router.add_get(base + "/{access}", get_ec2)
    app.router.add_delete(base + "/{access}", delete_ec2)
    app.router.add_get("/v3/credentials", list_credentials)
    app.router.add_get("/v3/credentials/{credential_id}", get_credential)
