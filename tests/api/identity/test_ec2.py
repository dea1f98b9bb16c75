"""EC2 credentials through OS-EC2 and /v3/credentials, and their lookup by the S3/EC2 APIs."""

from __future__ import annotations

import json

from harness.identity import IdentityCloud as Cloud

from cloudd.identity.credentials import lookup_ec2_credential

from .test_tokens import make_user


async def test_ec2_credentials_create_list_delete(cloud: Cloud) -> None:
    user_id, project_id = await make_user(cloud, "dave", "dave-pw", "member", "daves")
    token, _ = await cloud.token("dave", "dave-pw", "daves")
    base = f"/v3/users/{user_id}/credentials/OS-EC2"
    resp = await cloud.call("POST", base, token, {"tenant_id": project_id})
    assert resp.status == 201
    cred = (await resp.json())["credential"]
    assert cred["user_id"] == user_id and cred["tenant_id"] == project_id
    assert cred["trust_id"] is None and cred["access"] and cred["secret"]
    assert cred["links"]["self"] == f"{cloud.base_url}/identity{base}/{cred['access']}"

    listed = (await (await cloud.call("GET", base, token)).json())["credentials"]
    assert [c["access"] for c in listed] == [cred["access"]]
    one = (await (await cloud.call("GET", f"{base}/{cred['access']}", token)).json())
    assert one["credential"]["secret"] == cred["secret"]
    generic = (await (await cloud.call("GET", "/v3/credentials?type=ec2", token)).json())
    assert json.loads(generic["credentials"][0]["blob"])["access"] == cred["access"]

    found = await lookup_ec2_credential(cloud.db, cred["access"])
    assert found is not None
    assert (found.secret, found.project_id) == (cred["secret"], project_id)
    assert sorted(found.roles) == ["member", "reader"]
    assert await lookup_ec2_credential(cloud.db, "nope") is None

    assert (await cloud.call("DELETE", f"{base}/{cred['access']}", token)).status == 204
    assert (await cloud.call("GET", f"{base}/{cred['access']}", token)).status == 404
    assert await lookup_ec2_credential(cloud.db, cred["access"]) is None


async def test_ec2_refused_for_other_users_and_foreign_projects(cloud: Cloud) -> None:
    user_id, _ = await make_user(cloud, "erin", "erin-pw", "member", "erins")
    token, _ = await cloud.token("erin", "erin-pw", "erins")
    admin_base = f"/v3/users/{cloud.admin['user_id']}/credentials/OS-EC2"
    resp = await cloud.call("POST", admin_base, token, {"tenant_id": cloud.admin["project_id"]})
    assert resp.status == 403
    resp = await cloud.call("POST", f"/v3/users/{user_id}/credentials/OS-EC2", token,
                            {"tenant_id": cloud.admin["project_id"]})
    assert resp.status == 403  # erin has no role on the admin project
    resp = await cloud.call("POST", f"/v3/users/{user_id}/credentials/OS-EC2", token, {})
    assert resp.status == 400
