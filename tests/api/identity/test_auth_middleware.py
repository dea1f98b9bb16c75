"""auth_middleware on a sub-app of another API: 401s, the request context and policy checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from harness.api import ApiCloud as Cloud
from harness.users import password_auth

from cloudd.api.auth import (
    auth_middleware,
    get_context,
    request_id_middleware,
    require_role,
)
from cloudd.api.service import ApiService
from cloudd.core import ServiceHost

from .test_tokens import make_user


def compute_error(status: int, message: str) -> dict[str, Any]:
    name = {401: "unauthorized", 403: "forbidden"}.get(status, "computeFault")
    return {name: {"code": status, "message": message}}


async def whoami(request: web.Request) -> web.Response:
    context = get_context(request)
    return web.json_response({
        "user_id": context.user_id, "user_name": context.user_name,
        "project_id": context.project_id, "project_name": context.project_name,
        "roles": sorted(context.roles), "is_admin": context.is_admin,
        "request_id": context.request_id})


async def read_project(request: web.Request) -> web.Response:
    get_context(request).require_read(request.match_info["project_id"])
    return web.json_response({"ok": True})


@require_role("member")
async def act(request: web.Request) -> web.Response:
    return web.json_response({"done": True})


async def version_document(request: web.Request) -> web.Response:
    return web.json_response({"version": "open to all"})


def dummy_app(host: ServiceHost) -> web.Application:
    app = web.Application(middlewares=[
        request_id_middleware(("X-OpenStack-Request-ID", "X-Compute-Request-Id")),
        auth_middleware(unauthenticated_paths=["/dummy/"], error_body=compute_error),
    ])
    app.router.add_get("", version_document)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/projects/{project_id}", read_project)
    app.router.add_post("/act", act)
    return app


@pytest.fixture
async def dummy(cloud: Cloud) -> AsyncIterator[TestClient[Any, Any]]:
    api = ApiService(cloud.host)
    api.mount("/dummy", dummy_app)
    client: TestClient[Any, Any] = TestClient(TestServer(api.build_app(), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def test_no_token_is_401_in_callers_format(cloud: Cloud, dummy: TestClient[Any, Any]) \
        -> None:
    resp = await dummy.get("/dummy/whoami")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.base}/identity"'
    assert (await resp.json())["unauthorized"]["code"] == 401
    assert resp.headers["X-Compute-Request-Id"] == resp.headers["X-OpenStack-Request-ID"]
    resp = await dummy.get("/dummy/whoami", headers={"X-Auth-Token": "forged"})
    assert resp.status == 401
    assert (await dummy.get("/dummy")).status == 200  # unauthenticated path


async def test_context_filled_from_token(cloud: Cloud, dummy: TestClient[Any, Any]) -> None:
    resp = await dummy.get("/dummy/whoami", headers={"X-Auth-Token": cloud.admin_token})
    assert resp.status == 200
    context = await resp.json()
    assert context == {
        "user_id": cloud.admin["user_id"], "user_name": "admin",
        "project_id": cloud.admin["project_id"], "project_name": "admin",
        "roles": ["admin", "member", "reader"], "is_admin": True,
        "request_id": resp.headers["X-OpenStack-Request-ID"]}


async def test_policy_reader_member_admin(cloud: Cloud, dummy: TestClient[Any, Any]) -> None:
    _, project_id = await make_user(cloud, "rita", "rita-pw", "reader", "ritas")
    reader, _ = await cloud.authenticate(password_auth("rita", "rita-pw", "ritas"))
    headers = {"X-Auth-Token": reader}
    assert (await dummy.get(f"/dummy/projects/{project_id}", headers=headers)).status == 200
    resp = await dummy.get(f"/dummy/projects/{cloud.admin['project_id']}", headers=headers)
    assert resp.status == 403
    assert (await resp.json())["forbidden"]["code"] == 403
    assert (await dummy.post("/dummy/act", headers=headers)).status == 403
    admin = {"X-Auth-Token": cloud.admin_token}
    assert (await dummy.get(f"/dummy/projects/{project_id}", headers=admin)).status == 200
    assert (await dummy.post("/dummy/act", headers=admin)).status == 200


async def test_revocation_reaches_other_apis_at_once(cloud: Cloud,
                                                     dummy: TestClient[Any, Any]) -> None:
    token = cloud.admin_token
    headers = {"X-Auth-Token": token}
    assert (await dummy.get("/dummy/whoami", headers=headers)).status == 200  # now cached
    code, _, _ = await cloud.call("DELETE", "/identity/v3/auth/tokens", token,
                                  headers={"X-Subject-Token": token})
    assert code == 204
    assert (await dummy.get("/dummy/whoami", headers=headers)).status == 401
