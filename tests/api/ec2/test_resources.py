"""Tags, image attributes, security-group revoke/delete, key pairs and the XML details boto3 is
strict about; EC2 ids stay stable (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from harness.aws import Ec2Cloud, run

from cloudd.api.ec2 import ids
from cloudd.api.ec2.xml import Ec2Error, render_body

from .test_lifecycle import FAST, boot_image_id


async def _code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        await run(call, **kwargs)
    return str(info.value.response["Error"]["Code"])


async def test_tags_and_image_attributes(ec2cloud: Ec2Cloud) -> None:
    admin = ec2cloud.client(await ec2cloud.credentials())
    member_keys = await ec2cloud.credentials("tenant")
    member = ec2cloud.client(member_keys)
    image = await boot_image_id(admin)
    [instance] = (await run(admin.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                            InstanceType="m1.tiny"))["Instances"]
    iid = instance["InstanceId"]
    await run(admin.get_waiter("instance_running").wait, InstanceIds=[iid], WaiterConfig=FAST)
    snapshot = (await run(admin.create_image, InstanceId=iid, Name="snap-attr"))["ImageId"]
    await run(admin.get_waiter("image_available").wait, ImageIds=[snapshot], WaiterConfig=FAST)

    await run(admin.create_tags, Resources=[iid, snapshot], Tags=[
        {"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}])
    tags = (await run(admin.describe_tags, Filters=[{"Name": "key", "Values": ["env"]}]))["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"]) for t in tags) == sorted(
        [(iid, "instance"), (snapshot, "image")])
    found = await run(admin.describe_images, Owners=["self"],
                      Filters=[{"Name": "tag:env", "Values": ["pr*"]}])
    assert [i["ImageId"] for i in found["Images"]] == [snapshot]
    await run(admin.delete_tags, Resources=[iid], Tags=[{"Key": "env", "Value": "dev"}])
    assert len((await run(admin.describe_tags))["Tags"]) == 4  # value did not match: kept
    await run(admin.delete_tags, Resources=[iid], Tags=[{"Key": "env"}])
    assert len((await run(admin.describe_tags))["Tags"]) == 3
    assert await _code(member.create_tags, Resources=[iid], Tags=[{"Key": "x", "Value": "y"}]) \
        == "InvalidInstanceID.NotFound"
    assert (await run(member.describe_tags))["Tags"] == []

    # Private until the launch permission goes to group "all" (only admins publish).
    assert snapshot not in [i["ImageId"] for i in
                            (await run(member.describe_images))["Images"]]
    permission = await run(admin.describe_image_attribute, ImageId=snapshot,
                           Attribute="launchPermission")
    assert permission["LaunchPermissions"] == []
    await run(admin.modify_image_attribute, ImageId=snapshot,
              LaunchPermission={"Add": [{"Group": "all"}]})
    assert (await run(admin.describe_image_attribute, ImageId=snapshot,
                      Attribute="launchPermission"))["LaunchPermissions"] == [{"Group": "all"}]
    [seen] = (await run(member.describe_images, ImageIds=[snapshot]))["Images"]
    assert seen["Public"] is True and seen["State"] == "available"
    assert await _code(member.deregister_image, ImageId=snapshot) == "AuthFailure"
    await run(admin.modify_image_attribute, ImageId=snapshot,
              LaunchPermission={"Remove": [{"Group": "all"}]})
    assert await _code(member.describe_images, ImageIds=[snapshot]) == "InvalidAMIID.NotFound"
    await run(admin.terminate_instances, InstanceIds=[iid])
    await run(admin.deregister_image, ImageId=snapshot)
    assert await _code(admin.describe_images, ImageIds=[snapshot]) == "InvalidAMIID.NotFound"
    assert await _code(admin.describe_images, ImageIds=["ami-zz"]) == "InvalidAMIID.Malformed"


async def test_security_groups_and_key_pairs(ec2cloud: Ec2Cloud) -> None:
    ec2 = ec2cloud.client(await ec2cloud.credentials("sg"))
    created = await run(ec2.create_key_pair, KeyName="made")
    assert created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert await _code(ec2.create_key_pair, KeyName="made") == "InvalidKeyPair.Duplicate"
    assert await _code(ec2.describe_key_pairs, KeyNames=["nope"]) == "InvalidKeyPair.NotFound"
    [pair] = (await run(ec2.describe_key_pairs))["KeyPairs"]
    assert pair["KeyFingerprint"] == created["KeyFingerprint"]
    await run(ec2.delete_key_pair, KeyName="made")
    await run(ec2.delete_key_pair, KeyName="made")  # true again, as Nova and AWS
    assert (await run(ec2.describe_key_pairs))["KeyPairs"] == []

    group = (await run(ec2.create_security_group, GroupName="db", Description="d"))["GroupId"]
    assert await _code(ec2.create_security_group, GroupName="db", Description="d") \
        == "InvalidGroup.Duplicate"
    await run(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupName": "default"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    [described] = (await run(ec2.describe_security_groups, GroupNames=["db"]))["SecurityGroups"]
    rules = {p["IpProtocol"]: p for p in described["IpPermissions"]}
    assert rules["tcp"]["UserIdGroupPairs"][0]["GroupName"] == "default"
    assert (rules["icmp"]["FromPort"], rules["icmp"]["ToPort"]) == (-1, -1)
    await run(ec2.revoke_security_group_ingress, GroupId=group, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert await _code(ec2.revoke_security_group_ingress, GroupId=group, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]) == "InvalidPermission.NotFound"
    await run(ec2.delete_security_group, GroupId=group)
    assert await _code(ec2.describe_security_groups, GroupIds=[group]) == "InvalidGroup.NotFound"
    assert await _code(ec2.delete_security_group, GroupName="default") == "CannotDelete"
    attrs = (await run(ec2.describe_account_attributes))["AccountAttributes"]
    assert {a["AttributeName"] for a in attrs} >= {"supported-platforms", "max-instances"}


def test_xml_has_no_empty_numbers_and_lowercase_booleans() -> None:
    body = render_body("X", "req-1", {"a": None, "b": True, "c": [{"d": 0, "e": None}],
                                      "f": "<&>"})
    assert "<a" not in body and "<b>true</b>" in body and "<item><d>0</d></item>" in body
    assert "<f>&lt;&amp;&gt;</f>" in body


async def test_ec2_ids_are_stable(db: Any) -> None:
    first = await ids.ec2_id(db, ids.INSTANCE, "uuid-1")
    second = await ids.ec2_id(db, ids.INSTANCE, "uuid-2")
    assert first != second and first.startswith("i-") and len(first) == 10
    assert await ids.ec2_id(db, ids.INSTANCE, "uuid-1") == first
    assert await ids.uuid_for(db, ids.INSTANCE, first) == "uuid-1"
    kernel = await ids.ec2_id(db, ids.IMAGE, "img", "aki")
    assert kernel.startswith("aki-") and await ids.ec2_id(db, ids.IMAGE, "img") == "ami-" + kernel[4:]
    assert (await ids.many_ec2_ids(db, ids.INSTANCE, ["uuid-2", "uuid-3"]))["uuid-2"] == \
        int(second[2:], 16)
    with pytest.raises(Ec2Error) as info:
        await ids.uuid_for(db, ids.INSTANCE, "i-7ffffff0")
    assert info.value.code == "InvalidInstanceID.NotFound"
