"""Private flavors: access lists, visibility, and booting only with access."""

from __future__ import annotations

from harness.api import ApiCloud as Cloud

from .test_quotas import server_request

F = "/compute/v2.1/flavors"


async def test_private_flavor_access(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("fa", ("member", "reader"))
    code, body, _ = await cloud.call("POST", F, json={"flavor": {
        "name": "secret", "ram": 256, "vcpus": 1, "disk": 1, "id": "priv",
        "os-flavor-access:is_public": False}})
    assert code == 200, body

    # Invisible and unusable without access: a 404 on show, absent from lists, 400 on create.
    code, body, _ = await cloud.call("GET", f"{F}/priv", token=token)
    assert code == 404 and "itemNotFound" in body
    code, body, _ = await cloud.call("GET", f"{F}/detail?is_public=None", token=token)
    assert "priv" not in [f["id"] for f in body["flavors"]]
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token=token,
                                     json=await server_request(cloud, "p", "priv"))
    assert code == 400 and body["badRequest"]["message"] == "Flavor priv could not be found."

    code, body, _ = await cloud.call("POST", f"{F}/priv/action", token=token,
                                     json={"addTenantAccess": {"tenant": project_id}})
    assert code == 403  # access lists are managed by admins
    code, body, _ = await cloud.call("POST", f"{F}/priv/action",
                                     json={"addTenantAccess": {"tenant": project_id}})
    assert code == 200
    assert body == {"flavor_access": [{"flavor_id": "priv", "tenant_id": project_id}]}
    code, body, _ = await cloud.call("POST", f"{F}/priv/action",
                                     json={"addTenantAccess": {"tenant": project_id}})
    assert code == 409 and "conflictingRequest" in body
    code, body, _ = await cloud.call("GET", f"{F}/priv/os-flavor-access")
    assert body["flavor_access"] == [{"flavor_id": "priv", "tenant_id": project_id}]

    code, body, _ = await cloud.call("GET", f"{F}/priv", token=token)
    assert code == 200 and body["flavor"]["name"] == "secret"
    code, body, _ = await cloud.call("GET", F, token=token)
    assert "priv" in [f["id"] for f in body["flavors"]]
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token=token,
                                     json=await server_request(cloud, "p", "priv"))
    assert code == 202, body

    code, body, _ = await cloud.call("POST", f"{F}/priv/action",
                                     json={"removeTenantAccess": {"tenant": project_id}})
    assert code == 200 and body == {"flavor_access": []}
    code, body, _ = await cloud.call("POST", f"{F}/priv/action",
                                     json={"removeTenantAccess": {"tenant": project_id}})
    assert code == 404
    code, body, _ = await cloud.call("GET", f"{F}/priv", token=token)
    assert code == 404


async def test_public_flavors_have_no_access_list(cloud: Cloud) -> None:
    code, body, _ = await cloud.call("GET", f"{F}/1/os-flavor-access")
    assert code == 404
    assert body["itemNotFound"]["message"] == "Access list not available for public flavors."
    code, body, _ = await cloud.call("POST", f"{F}/1/action",
                                     json={"addTenantAccess": {"tenant": "p"}})
    assert code == 409
    bad: object
    for bad in ({"addTenantAccess": {}}, {"addTenantAccess": {"tenant": 5}}, {"nope": {}},
                {"addTenantAccess": {"tenant": "p"}, "removeTenantAccess": {"tenant": "p"}}, []):
        code, body, _ = await cloud.call("POST", f"{F}/1/action", json=bad)
        assert code == 400 and "badRequest" in body, bad
