"""Admin calls on projects, users, roles and assignments; what a non-admin may and may not do."""

from __future__ import annotations

from harness.api import ApiCloud as Cloud
from harness.users import password_auth

from .test_tokens import make_user

V3 = "/identity/v3"


async def test_project_crud_and_duplicate(cloud: Cloud) -> None:
    admin = cloud.admin_token
    code, body, _ = await cloud.call("POST", f"{V3}/projects", admin, json={
        "project": {"name": "web", "description": "the web team"}})
    assert code == 201
    project = body["project"]
    assert project["domain_id"] == "default" and project["parent_id"] == "default"
    assert project["is_domain"] is False and project["enabled"] is True
    assert project["links"]["self"] == f"{cloud.base}/identity/v3/projects/{project['id']}"
    code, body, _ = await cloud.call("POST", f"{V3}/projects", admin,
                                     json={"project": {"name": "web"}})
    assert code == 409
    assert body["error"]["title"] == "Conflict"
    listed = (await cloud.call("GET", f"{V3}/projects?name=web", admin))[1]["projects"]
    assert [p["id"] for p in listed] == [project["id"]]
    all_names = {p["name"] for p in (await cloud.call("GET", f"{V3}/projects", admin)
                                     )[1]["projects"]}
    assert all_names == {"admin", "service", "web"}
    code, body, _ = await cloud.call("PATCH", f"{V3}/projects/{project['id']}", admin,
                                     json={"project": {"description": "changed"}})
    assert body["project"]["description"] == "changed"
    assert (await cloud.call("DELETE", f"{V3}/projects/{project['id']}", admin))[0] == 204
    code, body, _ = await cloud.call("GET", f"{V3}/projects/{project['id']}", admin)
    assert code == 404
    assert body["error"]["title"] == "Not Found"
    code, _, _ = await cloud.call("GET", f"{V3}/projects/web", admin)  # OSC's name-as-id probe
    assert code == 404


async def test_bad_bodies_are_400(cloud: Cloud) -> None:
    admin = cloud.admin_token
    body: object
    for body in ({"project": {}}, {"project": {"name": ""}}, {"nothing": 1}, [1]):
        code, reply, _ = await cloud.call("POST", f"{V3}/projects", admin, json=body)
        assert code == 400, body
        assert reply["error"]["message"]
    code, _, _ = await cloud.call("POST", f"{V3}/users", admin,
                                  json={"user": {"name": "x", "enabled": "no"}})
    assert code == 400


async def test_user_crud_password_change_and_duplicate(cloud: Cloud) -> None:
    admin = cloud.admin_token
    user_id, _ = await make_user(cloud, "alice", "first-pw", "member", "alice-project")
    code, _, _ = await cloud.call("POST", f"{V3}/users", admin, json={"user": {"name": "alice"}})
    assert code == 409
    users = (await cloud.call("GET", f"{V3}/users?name=alice", admin))[1]["users"]
    assert [u["id"] for u in users] == [user_id]
    assert "password" not in users[0] and "password_hash" not in users[0]
    old_token, _ = await cloud.authenticate(password_auth("alice", "first-pw", "alice-project"))
    code, body, _ = await cloud.call("PATCH", f"{V3}/users/{user_id}", admin, json={
        "user": {"password": "second-pw", "email": "a@example.org"}})
    assert code == 200
    assert body["user"]["email"] == "a@example.org"
    # A password change revokes the user's tokens and the old password stops working.
    assert (await cloud.call("GET", f"{V3}/users/{user_id}", old_token))[0] == 401
    code, _, _ = await cloud.call("POST", f"{V3}/auth/tokens", "", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": user_id, "password": "first-pw"}}}}})
    assert code == 401
    await cloud.authenticate(password_auth("alice", "second-pw", "alice-project"))
    assert (await cloud.call("DELETE", f"{V3}/users/{user_id}", admin))[0] == 204
    assert (await cloud.call("GET", f"{V3}/users/{user_id}", admin))[0] == 404


async def test_non_admin_is_refused_but_sees_itself(cloud: Cloud) -> None:
    user_id, project_id = await make_user(cloud, "bob", "bob-pw", "member", "bobs")
    token, _ = await cloud.authenticate(password_auth("bob", "bob-pw", "bobs"))
    for method, path, body in (
        ("GET", "/projects", None), ("GET", "/users", None),
        ("POST", "/projects", {"project": {"name": "mine"}}),
        ("GET", f"/users/{cloud.admin['user_id']}", None),
        ("GET", f"/projects/{cloud.admin['project_id']}", None),
        ("PUT", f"/projects/{project_id}/users/{user_id}/roles/x", None),
        ("GET", "/role_assignments", None),
    ):
        code, reply, _ = await cloud.call(method, V3 + path, token, json=body)
        assert code == 403, (method, path)
        assert reply["error"]["title"] == "Forbidden"
    assert (await cloud.call("GET", f"{V3}/users/{user_id}", token))[0] == 200
    assert (await cloud.call("GET", f"{V3}/projects/{project_id}", token))[0] == 200
    for path in (f"{V3}/users/{user_id}/projects", f"{V3}/auth/projects"):
        projects = (await cloud.call("GET", path, token))[1]["projects"]
        assert [p["name"] for p in projects] == ["bobs"]


async def test_roles_and_assignments(cloud: Cloud) -> None:
    admin = cloud.admin_token
    roles = (await cloud.call("GET", f"{V3}/roles", admin))[1]["roles"]
    by_name = {role["name"]: role["id"] for role in roles}
    assert set(by_name) == {"admin", "member", "reader"}
    role = (await cloud.call("GET", f"{V3}/roles/{by_name['reader']}", admin))[1]
    assert role["role"]["name"] == "reader"
    user_id, project_id = await make_user(cloud, "carol", "carol-pw", "reader", "carols")
    listed = (await cloud.call(
        "GET", f"{V3}/projects/{project_id}/users/{user_id}/roles", admin))[1]["roles"]
    assert [r["name"] for r in listed] == ["reader"]
    assignments = (await cloud.call(
        "GET", f"{V3}/role_assignments?user.id={user_id}&scope.project.id={project_id}"
               "&include_names", admin))[1]["role_assignments"]
    assert len(assignments) == 1
    assert assignments[0]["role"] == {"id": by_name["reader"], "name": "reader"}
    assert assignments[0]["scope"]["project"]["id"] == project_id
    token, body = await cloud.authenticate(password_auth("carol", "carol-pw", "carols"))
    assert [r["name"] for r in body["roles"]] == ["reader"]
    path = f"{V3}/projects/{project_id}/users/{user_id}/roles/{by_name['reader']}"
    assert (await cloud.call("DELETE", path, admin))[0] == 204
    assert (await cloud.call("DELETE", path, admin))[0] == 404
    # Losing the role ends the tokens that carried it.
    assert (await cloud.call("GET", f"{V3}/users/{user_id}", token))[0] == 401


async def test_domains(cloud: Cloud) -> None:
    admin = cloud.admin_token
    _, body, _ = await cloud.call("GET", f"{V3}/domains/default", admin)
    assert body["domain"]["name"] == "Default"
    domains = (await cloud.call("GET", f"{V3}/domains?name=Default", admin))[1]
    assert [d["id"] for d in domains["domains"]] == ["default"]
    assert (await cloud.call("GET", f"{V3}/domains/Default", admin))[0] == 404
