"""tempest's clean-up of dynamic credentials, as it calls the Network API: the admin lists a
test project's default group with `?tenant_id=<project>&name=default` and deletes it (Neutron
refuses that only to the project's own users)."""

from __future__ import annotations

from harness.api import ApiCloud as Cloud

G = "/network/v2.0/security-groups"


async def test_admin_cleans_up_each_projects_default_group(netcloud: Cloud) -> None:
    projects = {}
    for name in ("tempest-a", "tempest-b"):
        token, project_id = await netcloud.user_token(name, ("member",))
        code, _, _ = await netcloud.call("GET", G, token=token)  # makes the default group
        assert code == 200
        projects[project_id] = token
    first, second = projects
    code, body, _ = await netcloud.call("GET", f"{G}?tenant_id={first}&name=default")
    assert code == 200
    (group,) = body["security_groups"]
    assert group["tenant_id"] == first and group["name"] == "default"
    code, body, _ = await netcloud.call("DELETE", f"{G}/{group['id']}", token=projects[first])
    assert code == 409 and list(body) == ["NeutronError"]
    code, body, _ = await netcloud.call("DELETE", f"{G}/{group['id']}")
    assert code == 204, body
    code, body, _ = await netcloud.call("GET", f"{G}?tenant_id={first}&name=default")
    assert body["security_groups"] == []
    # the other project's default group is untouched
    code, body, _ = await netcloud.call("GET", f"{G}?tenant_id={second}&name=default")
    assert len(body["security_groups"]) == 1
    code, body, _ = await netcloud.call("DELETE", f"{G}/{group['id']}")
    assert code == 404 and list(body) == ["NeutronError"]
