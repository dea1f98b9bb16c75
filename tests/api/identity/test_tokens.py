"""Issuing, validating, re-scoping, expiring and revoking tokens through /identity/v3/auth/tokens."""

from __future__ import annotations

import asyncio
import re
import uuid

from harness.identity import IdentityCloud as Cloud
from harness.users import password_auth

from cloudd.identity.tokens import purge_expired

TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_version_discovery(cloud: Cloud) -> None:
    for path in ("/identity", "/identity/"):
        resp = await cloud.client.get(path)
        assert resp.status == 300
        values = (await resp.json())["versions"]["values"]
        assert values[0]["id"] == "v3.14"
        assert values[0]["links"][0]["href"] == f"{cloud.base_url}/identity/v3/"
        assert resp.headers["X-OpenStack-Request-ID"].startswith("req-")
    for path in ("/identity/v3", "/identity/v3/"):
        resp = await cloud.client.get(path)
        assert resp.status == 200
        assert (await resp.json())["version"]["status"] == "stable"


async def test_password_token_by_name_has_reference_body(cloud: Cloud) -> None:
    resp = await cloud.client.post("/identity/v3/auth/tokens",
                                   json=password_auth("admin", cloud.admin["password"], "admin"))
    assert resp.status == 201
    assert len(resp.headers["X-Subject-Token"]) >= 40
    assert re.match(r"^req-[0-9a-f-]{36}$", resp.headers["X-OpenStack-Request-ID"])
    token = (await resp.json())["token"]
    assert token["methods"] == ["password"]
    assert token["user"] == {"id": cloud.admin["user_id"], "name": "admin",
                             "domain": {"id": "default", "name": "Default"},
                             "password_expires_at": None}
    assert token["project"] == {"id": cloud.admin["project_id"], "name": "admin",
                                "domain": {"id": "default", "name": "Default"}}
    assert token["is_domain"] is False
    assert sorted(role["name"] for role in token["roles"]) == ["admin", "member", "reader"]
    assert len(token["audit_ids"]) == 1
    assert TIME_FORMAT.match(token["issued_at"]) and TIME_FORMAT.match(token["expires_at"])
    assert token["expires_at"] > token["issued_at"]


async def test_catalog_lists_services_from_public_url(cloud: Cloud) -> None:
    _, token = await cloud.token("admin", cloud.admin["password"], "admin")
    urls = {entry["type"]: entry for entry in token["catalog"]}
    # Only APIs this controller serves: image and network are not mounted in this test.
    assert set(urls) == {"identity", "compute"}
    compute = urls["compute"]
    assert compute["name"] == "nova"
    assert {(e["interface"], e["region_id"], e["url"]) for e in compute["endpoints"]} == {
        (interface, "RegionOne", f"{cloud.base_url}/compute/v2.1")
        for interface in ("public", "internal", "admin")}
    assert urls["identity"]["endpoints"][0]["url"] == f"{cloud.base_url}/identity"
    resp = await cloud.client.post("/identity/v3/auth/tokens?nocatalog",
                                   json=password_auth("admin", cloud.admin["password"], "admin"))
    assert "catalog" not in (await resp.json())["token"]


async def test_token_by_user_id_and_project_id(cloud: Cloud) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": cloud.admin["user_id"], "password": cloud.admin["password"]}}},
        "scope": {"project": {"id": cloud.admin["project_id"]}}}}
    resp = await cloud.client.post("/identity/v3/auth/tokens", json=body)
    assert resp.status == 201
    assert (await resp.json())["token"]["project"]["id"] == cloud.admin["project_id"]


async def test_wrong_password_and_unknown_user_are_401_with_challenge(cloud: Cloud) -> None:
    for user, password in (("admin", "wrong"), ("nobody", "x")):
        resp = await cloud.client.post("/identity/v3/auth/tokens",
                                       json=password_auth(user, password, "admin"))
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.base_url}/identity"'
        error = (await resp.json())["error"]
        assert error["code"] == 401 and error["title"] == "Unauthorized"
        assert "X-Subject-Token" not in resp.headers


async def test_bad_body_is_400(cloud: Cloud) -> None:
    resp = await cloud.client.post("/identity/v3/auth/tokens", data=b"{not json")
    assert resp.status == 400
    resp = await cloud.client.post("/identity/v3/auth/tokens", json={"auth": {}})
    assert resp.status == 400
    assert "identity" in (await resp.json())["error"]["message"]


async def make_user(cloud: Cloud, name: str, password: str, role: str | None,
                    project: str | None = None) -> tuple[str, str]:
    """Create a user (and its project, with `role` on it) through the API; (user id, project id)."""
    admin = await cloud.admin_token()
    project_id = ""
    if project is not None:
        resp = await cloud.call("POST", "/v3/projects", admin, {"project": {"name": project}})
        project_id = (await resp.json())["project"]["id"]
    resp = await cloud.call("POST", "/v3/users", admin,
                            {"user": {"name": name, "password": password}})
    user_id = (await resp.json())["user"]["id"]
    if role is not None:
        role_id = (await (await cloud.call("GET", f"/v3/roles?name={role}", admin)).json()
                   )["roles"][0]["id"]
        resp = await cloud.call("PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
                                admin)
        assert resp.status == 204
    return user_id, project_id


async def test_implied_roles_for_member(cloud: Cloud) -> None:
    await make_user(cloud, "demo", "s3cret", "member", "demo")
    _, token = await cloud.token("demo", "s3cret", "demo")
    assert sorted(role["name"] for role in token["roles"]) == ["member", "reader"]


async def test_unscoped_token_has_no_project_or_roles(cloud: Cloud) -> None:
    await make_user(cloud, "loner", "pw12345", None)
    _, token = await cloud.token("loner", "pw12345")
    assert "project" not in token and "roles" not in token and "catalog" not in token
    resp = await cloud.client.post("/identity/v3/auth/tokens",
                                   json=password_auth("loner", "pw12345", "admin"))
    assert resp.status == 401  # no role on that project


async def test_token_method_rescopes_and_keeps_expiry(cloud: Cloud) -> None:
    await make_user(cloud, "demo", "s3cret", "member", "demo")
    unscoped, first = await cloud.token("demo", "s3cret", None, **{})
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
    resp = await cloud.client.post("/identity/v3/auth/tokens", json=body)
    assert resp.status == 201
    scoped = (await resp.json())["token"]
    assert scoped["project"]["name"] == "demo"
    assert scoped["expires_at"] == first["expires_at"]
    assert scoped["audit_ids"][1] == first["audit_ids"][0]
    assert resp.headers["X-Subject-Token"] != unscoped


async def test_validate_check_and_revoke(cloud: Cloud) -> None:
    admin = await cloud.admin_token()
    subject, issued = await cloud.token("admin", cloud.admin["password"], "admin")
    headers = {"X-Auth-Token": admin, "X-Subject-Token": subject}
    resp = await cloud.client.get("/identity/v3/auth/tokens", headers=headers)
    assert resp.status == 200
    validated = (await resp.json())["token"]
    assert validated["audit_ids"] == issued["audit_ids"]
    assert validated["expires_at"] == issued["expires_at"]
    assert (await cloud.client.head("/identity/v3/auth/tokens", headers=headers)).status == 200
    assert (await cloud.client.delete("/identity/v3/auth/tokens", headers=headers)).status == 204
    assert (await cloud.client.get("/identity/v3/auth/tokens", headers=headers)).status == 404
    resp = await cloud.call("GET", "/v3/projects", subject)
    assert resp.status == 401
    stored = await cloud.db.fetchval("SELECT count(*) FROM tokens WHERE id_hash = $1", subject)
    assert stored == 0  # only the hash is kept


async def test_token_expires(cloud: Cloud) -> None:
    cloud.host.config.api.token_expiration = 1
    token, _ = await cloud.token("admin", cloud.admin["password"], "admin")
    assert (await cloud.call("GET", "/v3/projects", token)).status == 200
    await asyncio.sleep(1.2)
    resp = await cloud.call("GET", "/v3/projects", token)
    assert resp.status == 401
    assert "WWW-Authenticate" in resp.headers
    assert await purge_expired(cloud.db, grace=0) >= 1
    assert await cloud.db.fetchval("SELECT count(*) FROM tokens") == 0


async def test_disabled_user_and_project_cannot_authenticate(cloud: Cloud) -> None:
    user_id, project_id = await make_user(cloud, "demo", "s3cret", "member", "demo")
    token, _ = await cloud.token("demo", "s3cret", "demo")
    admin = await cloud.admin_token()
    resp = await cloud.call("PATCH", f"/v3/projects/{project_id}", admin,
                            {"project": {"enabled": False}})
    assert resp.status == 200
    assert (await cloud.call("GET", f"/v3/users/{user_id}", token)).status == 401
    resp = await cloud.client.post("/identity/v3/auth/tokens",
                                   json=password_auth("demo", "s3cret", "demo"))
    assert resp.status == 401
    await cloud.call("PATCH", f"/v3/users/{user_id}", admin, {"user": {"enabled": False}})
    resp = await cloud.client.post("/identity/v3/auth/tokens",
                                   json=password_auth("demo", "s3cret"))
    assert resp.status == 401


async def test_garbage_token_is_401(cloud: Cloud) -> None:
    resp = await cloud.call("GET", "/v3/projects", uuid.uuid4().hex)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == 401
