"""The whole life of instances through EC2 calls with boto3 (SigV4 and SigV2) and awscli, on a
controller + fake-driver agent: key, security group, run, waiters, filters, addresses,
console, stop/start/reboot, image, terminate; the same servers in `openstack server list`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from harness.aws import Ec2Cloud, run

from cloudd.compute import quota

OPENSTACK = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[3] / ".venv")) / \
    "bin" / "openstack"
FAST = {"Delay": 0.5, "MaxAttempts": 60}


def ssh_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + " test@ec2"


async def boot_image_id(ec2: Any) -> str:
    images = (await run(ec2.describe_images, Filters=[
        {"Name": "name", "Values": ["cir*"]}, {"Name": "state", "Values": ["available"]}]))
    [image] = images["Images"]
    assert image["ImageId"].startswith("ami-") and image["Public"] is True
    return str(image["ImageId"])


async def prepare(ec2: Any, tag: str) -> tuple[str, str]:
    """A key pair and a security group with SSH open (both parameter styles): (key, group)."""
    await run(ec2.import_key_pair, KeyName=f"k-{tag}", PublicKeyMaterial=ssh_public_key())
    group = await run(ec2.create_security_group, GroupName=f"web-{tag}", Description="web")
    assert group["GroupId"].startswith("sg-")
    await run(ec2.authorize_security_group_ingress, GroupId=group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    await run(ec2.authorize_security_group_ingress, GroupName=f"web-{tag}", IpProtocol="tcp",
              FromPort=80, ToPort=80, CidrIp="10.0.0.0/8")
    with pytest.raises(ClientError) as dup:
        await run(ec2.authorize_security_group_ingress, GroupName=f"web-{tag}", IpProtocol="tcp",
                  FromPort=80, ToPort=80, CidrIp="10.0.0.0/8")
    assert dup.value.response["Error"]["Code"] == "InvalidPermission.Duplicate"
    [described] = (await run(ec2.describe_security_groups,
                             GroupIds=[group["GroupId"]]))["SecurityGroups"]
    assert sorted((p["FromPort"], p["IpRanges"][0]["CidrIp"]) for p in described["IpPermissions"]) \
        == [(22, "0.0.0.0/0"), (80, "10.0.0.0/8")]
    return f"k-{tag}", group["GroupId"]


async def run_two(ec2: Any, image: str, key: str, group: str, token: str) -> list[dict[str, Any]]:
    reply = await run(ec2.run_instances, ImageId=image, MinCount=2, MaxCount=2,
                      InstanceType="m1.tiny", KeyName=key, SecurityGroupIds=[group],
                      UserData="#!/bin/sh\necho hi\n", Placement={"AvailabilityZone": "nova"},
                      ClientToken=token, TagSpecifications=[{"ResourceType": "instance",
                                                             "Tags": [{"Key": "role",
                                                                       "Value": "web"}]}])
    assert reply["ReservationId"].startswith("r-")
    assert [g["GroupId"] for g in reply["Groups"]] == [group]
    return list(reply["Instances"])


async def check_describe(ec2: Any, ids: list[str], reservation: str, key: str) -> None:
    by_state = await run(ec2.describe_instances, Filters=[
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "tag:role", "Values": ["web"]}, {"Name": "key-name", "Values": [key]}])
    [found] = by_state["Reservations"]
    assert found["ReservationId"] == reservation
    assert sorted(i["InstanceId"] for i in found["Instances"]) == sorted(ids)
    assert all(i["State"] == {"Code": 16, "Name": "running"} for i in found["Instances"])
    assert all(i["PrivateIpAddress"].startswith("10.20.0.") for i in found["Instances"])
    none = await run(ec2.describe_instances, Filters=[{"Name": "tag:role", "Values": ["db"]}])
    assert none["Reservations"] == []
    attr = await run(ec2.describe_instance_attribute, InstanceId=ids[0], Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]) == b"#!/bin/sh\necho hi\n"


async def check_address(ec2: Any, instance: str) -> None:
    address = (await run(ec2.allocate_address))["PublicIp"]
    await run(ec2.associate_address, InstanceId=instance, PublicIp=address)
    [described] = (await run(ec2.describe_addresses, PublicIps=[address]))["Addresses"]
    assert described["InstanceId"] == instance
    [res] = (await run(ec2.describe_instances, InstanceIds=[instance]))["Reservations"]
    assert res["Instances"][0]["PublicIpAddress"] == address
    await run(ec2.disassociate_address, PublicIp=address)
    await run(ec2.release_address, PublicIp=address)
    assert (await run(ec2.describe_addresses))["Addresses"] == []


async def check_power(ec2: Any, instance: str) -> None:
    stopping = await run(ec2.stop_instances, InstanceIds=[instance])
    [change] = stopping["StoppingInstances"]
    assert change["PreviousState"]["Name"] == "running"
    assert change["CurrentState"]["Name"] in ("stopping", "stopped")
    await run(ec2.get_waiter("instance_stopped").wait, InstanceIds=[instance], WaiterConfig=FAST)
    starting = await run(ec2.start_instances, InstanceIds=[instance])
    assert starting["StartingInstances"][0]["PreviousState"]["Name"] == "stopped"
    await run(ec2.get_waiter("instance_running").wait, InstanceIds=[instance], WaiterConfig=FAST)
    await run(ec2.reboot_instances, InstanceIds=[instance])
    await run(ec2.get_waiter("instance_running").wait, InstanceIds=[instance], WaiterConfig=FAST)


def openstack_server_names(cloud: Ec2Cloud) -> list[str]:
    env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity", "OS_USERNAME": "admin",
           "OS_PASSWORD": cloud.admin["password"], "OS_PROJECT_NAME": "admin",
           "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"}
    done = subprocess.run([str(OPENSTACK), "server", "list", "-f", "json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return sorted(s["Name"] for s in json.loads(done.stdout))


@pytest.mark.slow
@pytest.mark.parametrize("signature", ["v4", "v2"])
async def test_instance_life(ec2cloud: Ec2Cloud, signature: str) -> None:
    keys = await ec2cloud.credentials()
    ec2 = ec2cloud.client(keys, signature_version=signature)
    image = await boot_image_id(ec2)
    key, group = await prepare(ec2, signature)
    token = str(uuid.uuid4())
    launched = await run_two(ec2, image, key, group, token)
    ids = [i["InstanceId"] for i in launched]
    assert all(i["State"]["Name"] == "pending" for i in launched)
    again = await run_two(ec2, image, key, group, token)  # same ClientToken: same instances
    assert [i["InstanceId"] for i in again] == ids
    await run(ec2.get_waiter("instance_running").wait, InstanceIds=ids, WaiterConfig=FAST)
    reservation = (await run(ec2.describe_instances, InstanceIds=ids))["Reservations"]
    assert len(reservation) == 1
    await check_describe(ec2, ids, reservation[0]["ReservationId"], key)
    await check_address(ec2, ids[0])
    console = await run(ec2.get_console_output, InstanceId=ids[0])
    assert console["InstanceId"] == ids[0] and console["Output"]  # botocore decodes base64
    await check_power(ec2, ids[0])
    snapshot = (await run(ec2.create_image, InstanceId=ids[0], Name=f"snap-{signature}"))["ImageId"]
    await run(ec2.get_waiter("image_available").wait, ImageIds=[snapshot], WaiterConfig=FAST)
    assert sorted(ids) == await asyncio.to_thread(openstack_server_names, ec2cloud)
    ended = await run(ec2.terminate_instances, InstanceIds=ids)
    assert {c["PreviousState"]["Name"] for c in ended["TerminatingInstances"]} == {"running"}
    await run(ec2.get_waiter("instance_terminated").wait, InstanceIds=ids, WaiterConfig=FAST)
    await run(ec2.deregister_image, ImageId=snapshot)
    assert await asyncio.to_thread(openstack_server_names, ec2cloud) == []


async def test_awscli_and_project_isolation(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    other = await ec2cloud.credentials("other")
    ec2, ec2_other = ec2cloud.client(keys), ec2cloud.client(other)
    image = await boot_image_id(ec2)
    await ec2cloud.aws(keys, "ec2", "import-key-pair", "--key-name", "cli-key",
                       "--public-key-material", ssh_public_key())
    out = json.loads(await ec2cloud.aws(keys, "ec2", "run-instances", "--image-id", image,
                                        "--instance-type", "m1.tiny", "--key-name", "cli-key"))
    instance = out["Instances"][0]["InstanceId"]
    listed = json.loads(await ec2cloud.aws(keys, "ec2", "describe-instances", "--filters",
                                           "Name=instance-id,Values=" + instance))
    assert [i["InstanceId"] for r in listed["Reservations"] for i in r["Instances"]] == [instance]
    pairs = json.loads(await ec2cloud.aws(keys, "ec2", "describe-key-pairs"))
    assert [p["KeyName"] for p in pairs["KeyPairs"]] == ["cli-key"]
    # Another project sees none of it and cannot touch it.
    assert (await run(ec2_other.describe_instances))["Reservations"] == []
    assert (await run(ec2_other.describe_key_pairs))["KeyPairs"] == []
    for call, kwargs in ((ec2_other.describe_instances, {"InstanceIds": [instance]}),
                         (ec2_other.terminate_instances, {"InstanceIds": [instance]}),
                         (ec2_other.get_console_output, {"InstanceId": instance})):
        with pytest.raises(ClientError) as info:
            await run(call, **kwargs)
        assert info.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as dup:
        await run(ec2.import_key_pair, KeyName="cli-key", PublicKeyMaterial=ssh_public_key())
    assert dup.value.response["Error"]["Code"] == "InvalidKeyPair.Duplicate"
    with pytest.raises(ClientError) as missing:
        await run(ec2.describe_instances, InstanceIds=["i-7fffffff"])
    assert missing.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    await run(ec2.terminate_instances, InstanceIds=[instance])


async def test_instance_quota_is_instance_limit_exceeded(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials("small")
    await quota.set_limits(ec2cloud.db, keys.project_id, {"instances": 1}, time.time())
    ec2 = ec2cloud.client(keys)
    image = await boot_image_id(ec2)
    with pytest.raises(ClientError) as info:
        await run(ec2.run_instances, ImageId=image, MinCount=2, MaxCount=2,
                  InstanceType="m1.tiny")
    assert info.value.response["Error"]["Code"] == "InstanceLimitExceeded"
    assert (await run(ec2.describe_instances))["Reservations"] == []

