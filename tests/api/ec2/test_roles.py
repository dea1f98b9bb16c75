"""EC2 keys carry their user's role in the project on every call: a reader describes, a member
acts, a user removed from the project or disabled is refused at once; SigV4 scopes must name
this cloud's region and the signed headers the host."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from harness.aws import Ec2Cloud, run
from harness.users import Keys, member_keys

from .test_auth import _code_of


async def second_user(cloud: Ec2Cloud, project_id: str, role: str) -> Keys:
    return await member_keys(cloud.identity, project_id, role)


async def test_reader_describes_member_acts(ec2cloud: Ec2Cloud) -> None:
    member = await ec2cloud.credentials(project="ops")
    reader = await second_user(ec2cloud, member.project_id, "reader")
    await run(ec2cloud.client(member).create_security_group, GroupName="team-sg",
              Description="the team's")
    looker = ec2cloud.client(reader)

    async def group_names(client: object) -> list[str]:
        groups = await run(client.describe_security_groups)  # type: ignore[attr-defined]
        return sorted(g["GroupName"] for g in groups["SecurityGroups"])

    assert "team-sg" in await group_names(looker)
    assert await _code_of(looker.create_security_group, GroupName="mine",
                          Description="x") == ("UnauthorizedOperation", 403)
    assert await _code_of(looker.delete_security_group, GroupName="team-sg") == \
        ("UnauthorizedOperation", 403)
    assert await _code_of(looker.create_key_pair, KeyName="mine") == ("UnauthorizedOperation", 403)
    assert await _code_of(looker.allocate_address) == ("UnauthorizedOperation", 403)
    # The real awscli with the reader's key: describe works, create is refused.
    assert "team-sg" in await ec2cloud.aws(reader, "ec2", "describe-security-groups")
    with pytest.raises(AssertionError, match="UnauthorizedOperation"):
        await ec2cloud.aws(reader, "ec2", "create-key-pair", "--key-name", "cli-key")
    assert await group_names(looker) == await group_names(ec2cloud.client(member))
    assert "mine" not in await group_names(looker)


async def test_removed_and_disabled_users_are_refused_at_once(ec2cloud: Ec2Cloud) -> None:
    owner = await ec2cloud.credentials(project="lab")
    removed = await second_user(ec2cloud, owner.project_id, "member")
    disabled = await second_user(ec2cloud, owner.project_id, "member")
    for keys in (removed, disabled):
        await run(ec2cloud.client(keys).describe_key_pairs)  # the keys work, and are cached
    member_role = (await ec2cloud.identity("GET", "/roles?name=member"))["roles"][0]["id"]
    await ec2cloud.identity("DELETE", f"/projects/{owner.project_id}/users/{removed.user_id}"
                            f"/roles/{member_role}")
    await ec2cloud.identity("PATCH", f"/users/{disabled.user_id}", {"user": {"enabled": False}})
    for keys in (removed, disabled):
        for version in ("v4", "v2"):
            client = ec2cloud.client(keys, signature_version=version)
            assert await _code_of(client.describe_key_pairs) == ("AuthFailure", 401)
            assert await _code_of(client.create_key_pair, KeyName="late") == ("AuthFailure", 401)
        with pytest.raises(AssertionError, match="AuthFailure"):
            await ec2cloud.aws(keys, "ec2", "describe-key-pairs")
    pairs = await run(ec2cloud.client(owner).describe_key_pairs)
    assert pairs["KeyPairs"] == []


async def test_sigv4_scope_must_name_this_region(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    elsewhere = boto3.session.Session().client(
        "ec2", endpoint_url=ec2cloud.ec2_url, region_name="eu-west-1",
        aws_access_key_id=keys.access, aws_secret_access_key=keys.secret,
        config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        await run(elsewhere.describe_regions)
    error = info.value.response["Error"]
    assert error["Code"] == "IncompleteSignature"
    assert "'eu-west-1' is wrong; expecting 'RegionOne'" in error["Message"]
