"""EC2 credentials through OS-EC2 and /v3/credentials, and their lookup by the S3/EC2 APIs."""

from __future__ import annotations

import json

from harness.api import ApiCloud as Cloud
from harness.users import password_auth

from cloudd.identity.credentials import lookup_ec2_credential

from .test_tokens import make_user


async def test_ec2_credentials_create_list_delete(cloud: Cloud) -> None:
    user_id, project_id = await make_user(cloud, "dave", "dave-pw", "member", "daves")
    token, _ = await cloud.authenticate(password_auth("dave", "dave-pw", "daves"))
    base = f"/identity/v3/users/{user_id}/credentials/OS-EC2"
    code, body, _ = await cloud.call("POST", base, token, json={"tenant_id": project_id})
    assert code == 201
    cred = body["credential"]
    assert cred["user_id"] == user_id and cred["tenant_id"] == project_id
    assert cred["trust_id"] is None and cred["access"] and cred["secret"]
    assert cred["links"]["self"] == f"{cloud.base}{base}/{cred['access']}"

    listed = (await cloud.call("GET", base, token))[1]["credentials"]
    assert [c["access"] for c in listed] == [cred["access"]]
    one = (await cloud.call("GET", f"{base}/{cred['access']}", token))[1]
    assert one["credential"]["secret"] == cred["secret"]
    generic = (await cloud.call("GET", "/identity/v3/credentials?type=ec2", token))[1]
    assert json.loads(generic["credentials"][0]["blob"])["access"] == cred["access"]

    found = await lookup_ec2_credential(cloud.db, cred["access"])
    assert found is not None
    assert (found.secret, found.project_id) == (cred["secret"], project_id)
    assert sorted(found.roles) == ["member", "reader"]
    assert await lookup_ec2_credential(cloud.db, "nope") is None

    assert (await cloud.call("DELETE", f"{base}/{cred['access']}", token))[0] == 204
    assert (await cloud.call("GET", f"{base}/{cred['access']}", token))[0] == 404
    assert await lookup_ec2_credential(cloud.db, cred["access"]) is None


async def test_ec2_refused_for_other_users_and_foreign_projects(cloud: Cloud) -> None:
    user_id, _ = await make_user(cloud, "erin", "erin-pw", "member", "erins")
    token, _ = await cloud.authenticate(password_auth("erin", "erin-pw", "erins"))
    admin_base = f"/identity/v3/users/{cloud.admin['user_id']}/credentials/OS-EC2"
    code, _, _ = await cloud.call("POST", admin_base, token,
                                  json={"tenant_id": cloud.admin["project_id"]})
    assert code == 403
    own_base = f"/identity/v3/users/{user_id}/credentials/OS-EC2"
    code, _, _ = await cloud.call("POST", own_base, token,
                                  json={"tenant_id": cloud.admin["project_id"]})
    assert code == 403  # erin has no role on the admin project
    code, _, _ = await cloud.call("POST", own_base, token, json={})
    assert code == 400
