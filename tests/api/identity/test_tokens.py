"""Issuing, validating, re-scoping, expiring and revoking tokens through /identity/v3/auth/tokens."""

from __future__ import annotations

import asyncio
import re
import uuid

from harness.api import ApiCloud as Cloud
from harness.users import password_auth

from cloudd.identity.tokens import purge_expired

TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TOKENS = "/identity/v3/auth/tokens"


async def test_version_discovery(cloud: Cloud) -> None:
    for path in ("/identity", "/identity/"):
        code, body, headers = await cloud.call("GET", path, "")
        assert code == 300
        values = body["versions"]["values"]
        assert values[0]["id"] == "v3.14"
        assert values[0]["links"][0]["href"] == f"{cloud.base}/identity/v3/"
        assert headers["X-OpenStack-Request-ID"].startswith("req-")
    for path in ("/identity/v3", "/identity/v3/"):
        code, body, _ = await cloud.call("GET", path, "")
        assert code == 200
        assert body["version"]["status"] == "stable"


async def test_password_token_by_name_has_reference_body(cloud: Cloud) -> None:
    code, body, headers = await cloud.call(
        "POST", TOKENS, "", json=password_auth("admin", cloud.admin["password"], "admin"))
    assert code == 201
    assert len(headers["X-Subject-Token"]) >= 40
    assert re.match(r"^req-[0-9a-f-]{36}$", headers["X-OpenStack-Request-ID"])
    token = body["token"]
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
    _, token = await cloud.authenticate(password_auth("admin", cloud.admin["password"], "admin"))
    urls = {entry["type"]: entry for entry in token["catalog"]}
    # Only APIs this controller serves: image and network are not mounted in this test.
    assert set(urls) == {"identity", "compute"}
    compute = urls["compute"]
    assert compute["name"] == "nova"
    assert {(e["interface"], e["region_id"], e["url"]) for e in compute["endpoints"]} == {
        (interface, "RegionOne", f"{cloud.base}/compute/v2.1")
        for interface in ("public", "internal", "admin")}
    assert urls["identity"]["endpoints"][0]["url"] == f"{cloud.base}/identity"
    _, body, _ = await cloud.call("POST", TOKENS + "?nocatalog", "",
                                  json=password_auth("admin", cloud.admin["password"], "admin"))
    assert "catalog" not in body["token"]


async def test_token_by_user_id_and_project_id(cloud: Cloud) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": cloud.admin["user_id"], "password": cloud.admin["password"]}}},
        "scope": {"project": {"id": cloud.admin["project_id"]}}}}
    code, reply, _ = await cloud.call("POST", TOKENS, "", json=body)
    assert code == 201
    assert reply["token"]["project"]["id"] == cloud.admin["project_id"]


async def test_wrong_password_and_unknown_user_are_401_with_challenge(cloud: Cloud) -> None:
    for user, password in (("admin", "wrong"), ("nobody", "x")):
        code, body, headers = await cloud.call("POST", TOKENS, "",
                                               json=password_auth(user, password, "admin"))
        assert code == 401
        assert headers["WWW-Authenticate"] == f'Keystone uri="{cloud.base}/identity"'
        error = body["error"]
        assert error["code"] == 401 and error["title"] == "Unauthorized"
        assert "X-Subject-Token" not in headers


async def test_bad_body_is_400(cloud: Cloud) -> None:
    code, _, _ = await cloud.call("POST", TOKENS, "", data=b"{not json")
    assert code == 400
    code, body, _ = await cloud.call("POST", TOKENS, "", json={"auth": {}})
    assert code == 400
    assert "identity" in body["error"]["message"]


async def make_user(cloud: Cloud, name: str, password: str, role: str | None,
                    project: str | None = None) -> tuple[str, str]:
    """Create a user (and its project, with `role` on it) through the API; (user id, project id)."""
    project_id = ""
    if project is not None:
        _, body, _ = await cloud.call("POST", "/identity/v3/projects",
                                      json={"project": {"name": project}})
        project_id = body["project"]["id"]
    _, body, _ = await cloud.call("POST", "/identity/v3/users",
                                  json={"user": {"name": name, "password": password}})
    user_id = body["user"]["id"]
    if role is not None:
        role_id = (await cloud.call("GET", f"/identity/v3/roles?name={role}"))[1]["roles"][0]["id"]
        code, _, _ = await cloud.call(
            "PUT", f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")
        assert code == 204
    return user_id, project_id


async def test_implied_roles_for_member(cloud: Cloud) -> None:
    await make_user(cloud, "demo", "s3cret", "member", "demo")
    _, token = await cloud.authenticate(password_auth("demo", "s3cret", "demo"))
    assert sorted(role["name"] for role in token["roles"]) == ["member", "reader"]


async def test_unscoped_token_has_no_project_or_roles(cloud: Cloud) -> None:
    await make_user(cloud, "loner", "pw12345", None)
    _, token = await cloud.authenticate(password_auth("loner", "pw12345"))
    assert "project" not in token and "roles" not in token and "catalog" not in token
    code, _, _ = await cloud.call("POST", TOKENS, "",
                                  json=password_auth("loner", "pw12345", "admin"))
    assert code == 401  # no role on that project


async def test_token_method_rescopes_and_keeps_expiry(cloud: Cloud) -> None:
    await make_user(cloud, "demo", "s3cret", "member", "demo")
    unscoped, first = await cloud.authenticate(password_auth("demo", "s3cret", None, **{}))
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
    code, reply, headers = await cloud.call("POST", TOKENS, "", json=body)
    assert code == 201
    scoped = reply["token"]
    assert scoped["project"]["name"] == "demo"
    assert scoped["expires_at"] == first["expires_at"]
    assert scoped["audit_ids"][1] == first["audit_ids"][0]
    assert headers["X-Subject-Token"] != unscoped


async def test_validate_check_and_revoke(cloud: Cloud) -> None:
    admin = cloud.admin_token
    subject, issued = await cloud.authenticate(
        password_auth("admin", cloud.admin["password"], "admin"))
    headers = {"X-Subject-Token": subject}
    code, body, _ = await cloud.call("GET", TOKENS, admin, headers=headers)
    assert code == 200
    validated = body["token"]
    assert validated["audit_ids"] == issued["audit_ids"]
    assert validated["expires_at"] == issued["expires_at"]
    assert (await cloud.call("HEAD", TOKENS, admin, headers=headers))[0] == 200
    assert (await cloud.call("DELETE", TOKENS, admin, headers=headers))[0] == 204
    assert (await cloud.call("GET", TOKENS, admin, headers=headers))[0] == 404
    code, _, _ = await cloud.call("GET", "/identity/v3/projects", subject)
    assert code == 401
    stored = await cloud.db.fetchval("SELECT count(*) FROM tokens WHERE id_hash = $1", subject)
    assert stored == 0  # only the hash is kept


async def test_token_expires(cloud: Cloud) -> None:
    # The harness's admin token, issued before the change, outlives the test: it is all that
    # may be left once the expired token is purged.
    unexpired = await cloud.db.fetchval("SELECT count(*) FROM tokens")
    cloud.host.config.api.token_expiration = 1
    token, _ = await cloud.authenticate(password_auth("admin", cloud.admin["password"], "admin"))
    assert (await cloud.call("GET", "/identity/v3/projects", token))[0] == 200
    await asyncio.sleep(1.2)
    code, _, headers = await cloud.call("GET", "/identity/v3/projects", token)
    assert code == 401
    assert "WWW-Authenticate" in headers
    assert await purge_expired(cloud.db, grace=0) >= 1
    assert await cloud.db.fetchval("SELECT count(*) FROM tokens") == unexpired


async def test_disabled_user_and_project_cannot_authenticate(cloud: Cloud) -> None:
    user_id, project_id = await make_user(cloud, "demo", "s3cret", "member", "demo")
    token, _ = await cloud.authenticate(password_auth("demo", "s3cret", "demo"))
    admin = cloud.admin_token
    code, _, _ = await cloud.call("PATCH", f"/identity/v3/projects/{project_id}", admin,
                                  json={"project": {"enabled": False}})
    assert code == 200
    assert (await cloud.call("GET", f"/identity/v3/users/{user_id}", token))[0] == 401
    code, _, _ = await cloud.call("POST", TOKENS, "", json=password_auth("demo", "s3cret", "demo"))
    assert code == 401
    await cloud.call("PATCH", f"/identity/v3/users/{user_id}", admin,
                     json={"user": {"enabled": False}})
    code, _, _ = await cloud.call("POST", TOKENS, "", json=password_auth("demo", "s3cret"))
    assert code == 401


async def test_garbage_token_is_401(cloud: Cloud) -> None:
    code, body, _ = await cloud.call("GET", "/identity/v3/projects", uuid.uuid4().hex)
    assert code == 401
    assert body["error"]["code"] == 401
