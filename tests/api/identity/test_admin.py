"""Admin calls on projects, users, roles and assignments; what a non-admin may and may not do."""

from __future__ import annotations

from harness.identity import IdentityCloud as Cloud

from .test_tokens import make_user


async def test_project_crud_and_duplicate(cloud: Cloud) -> None:
    admin = await cloud.admin_token()
    resp = await cloud.call("POST", "/v3/projects", admin,
                            {"project": {"name": "web", "description": "the web team"}})
    assert resp.status == 201
    project = (await resp.json())["project"]
    assert project["domain_id"] == "default" and project["parent_id"] == "default"
    assert project["is_domain"] is False and project["enabled"] is True
    assert project["links"]["self"] == f"{cloud.base_url}/identity/v3/projects/{project['id']}"
    resp = await cloud.call("POST", "/v3/projects", admin, {"project": {"name": "web"}})
    assert resp.status == 409
    assert (await resp.json())["error"]["title"] == "Conflict"
    listed = (await (await cloud.call("GET", "/v3/projects?name=web", admin)).json())["projects"]
    assert [p["id"] for p in listed] == [project["id"]]
    all_names = {p["name"] for p in (await (await cloud.call("GET", "/v3/projects", admin)
                                            ).json())["projects"]}
    assert all_names == {"admin", "service", "web"}
    resp = await cloud.call("PATCH", f"/v3/projects/{project['id']}", admin,
                            {"project": {"description": "changed"}})
    assert (await resp.json())["project"]["description"] == "changed"
    assert (await cloud.call("DELETE", f"/v3/projects/{project['id']}", admin)).status == 204
    resp = await cloud.call("GET", f"/v3/projects/{project['id']}", admin)
    assert resp.status == 404
    assert (await resp.json())["error"]["title"] == "Not Found"
    resp = await cloud.call("GET", "/v3/projects/web", admin)  # OSC's name-as-id probe
    assert resp.status == 404


async def test_bad_bodies_are_400(cloud: Cloud) -> None:
    admin = await cloud.admin_token()
    body: object
    for body in ({"project": {}}, {"project": {"name": ""}}, {"nothing": 1}, [1]):
        resp = await cloud.call("POST", "/v3/projects", admin, body)
        assert resp.status == 400, body
        assert (await resp.json())["error"]["message"]
    resp = await cloud.call("POST", "/v3/users", admin, {"user": {"name": "x", "enabled": "no"}})
    assert resp.status == 400


async def test_user_crud_password_change_and_duplicate(cloud: Cloud) -> None:
    admin = await cloud.admin_token()
    user_id, _ = await make_user(cloud, "alice", "first-pw", "member", "alice-project")
    resp = await cloud.call("POST", "/v3/users", admin, {"user": {"name": "alice"}})
    assert resp.status == 409
    users = (await (await cloud.call("GET", "/v3/users?name=alice", admin)).json())["users"]
    assert [u["id"] for u in users] == [user_id]
    assert "password" not in users[0] and "password_hash" not in users[0]
    old_token, _ = await cloud.token("alice", "first-pw", "alice-project")
    resp = await cloud.call("PATCH", f"/v3/users/{user_id}", admin,
                            {"user": {"password": "second-pw", "email": "a@example.org"}})
    assert resp.status == 200
    assert (await resp.json())["user"]["email"] == "a@example.org"
    # A password change revokes the user's tokens and the old password stops working.
    assert (await cloud.call("GET", f"/v3/users/{user_id}", old_token)).status == 401
    resp = await cloud.client.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": user_id, "password": "first-pw"}}}}})
    assert resp.status == 401
    await cloud.token("alice", "second-pw", "alice-project")
    assert (await cloud.call("DELETE", f"/v3/users/{user_id}", admin)).status == 204
    assert (await cloud.call("GET", f"/v3/users/{user_id}", admin)).status == 404


async def test_non_admin_is_refused_but_sees_itself(cloud: Cloud) -> None:
    user_id, project_id = await make_user(cloud, "bob", "bob-pw", "member", "bobs")
    token, _ = await cloud.token("bob", "bob-pw", "bobs")
    for method, path, body in (
        ("GET", "/v3/projects", None), ("GET", "/v3/users", None),
        ("POST", "/v3/projects", {"project": {"name": "mine"}}),
        ("GET", f"/v3/users/{cloud.admin['user_id']}", None),
        ("GET", f"/v3/projects/{cloud.admin['project_id']}", None),
        ("PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/x", None),
        ("GET", "/v3/role_assignments", None),
    ):
        resp = await cloud.call(method, path, token, body)
        assert resp.status == 403, (method, path)
        assert (await resp.json())["error"]["title"] == "Forbidden"
    assert (await cloud.call("GET", f"/v3/users/{user_id}", token)).status == 200
    assert (await cloud.call("GET", f"/v3/projects/{project_id}", token)).status == 200
    for path in (f"/v3/users/{user_id}/projects", "/v3/auth/projects"):
        projects = (await (await cloud.call("GET", path, token)).json())["projects"]
        assert [p["name"] for p in projects] == ["bobs"]


async def test_roles_and_assignments(cloud: Cloud) -> None:
    admin = await cloud.admin_token()
    roles = (await (await cloud.call("GET", "/v3/roles", admin)).json())["roles"]
    by_name = {role["name"]: role["id"] for role in roles}
    assert set(by_name) == {"admin", "member", "reader"}
    role = (await (await cloud.call("GET", f"/v3/roles/{by_name['reader']}", admin)).json())
    assert role["role"]["name"] == "reader"
    user_id, project_id = await make_user(cloud, "carol", "carol-pw", "reader", "carols")
    listed = (await (await cloud.call(
        "GET", f"/v3/projects/{project_id}/users/{user_id}/roles", admin)).json())["roles"]
    assert [r["name"] for r in listed] == ["reader"]
    assignments = (await (await cloud.call(
        "GET", f"/v3/role_assignments?user.id={user_id}&scope.project.id={project_id}"
               "&include_names", admin)).json())["role_assignments"]
    assert len(assignments) == 1
    assert assignments[0]["role"] == {"id": by_name["reader"], "name": "reader"}
    assert assignments[0]["scope"]["project"]["id"] == project_id
    token, body = await cloud.token("carol", "carol-pw", "carols")
    assert [r["name"] for r in body["roles"]] == ["reader"]
    path = f"/v3/projects/{project_id}/users/{user_id}/roles/{by_name['reader']}"
    assert (await cloud.call("DELETE", path, admin)).status == 204
    assert (await cloud.call("DELETE", path, admin)).status == 404
    # Losing the role ends the tokens that carried it.
    assert (await cloud.call("GET", f"/v3/users/{user_id}", token)).status == 401


async def test_domains(cloud: Cloud) -> None:
    admin = await cloud.admin_token()
    resp = await cloud.call("GET", "/v3/domains/default", admin)
    assert (await resp.json())["domain"]["name"] == "Default"
    domains = (await (await cloud.call("GET", "/v3/domains?name=Default", admin)).json())
    assert [d["id"] for d in domains["domains"]] == ["default"]
    assert (await cloud.call("GET", "/v3/domains/Default", admin)).status == 404
