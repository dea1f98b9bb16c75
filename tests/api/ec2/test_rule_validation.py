"""AuthorizeSecurityGroupIngress through boto3 refuses the rule values that once went verbatim
into the hosts' iptables-restore input (issue 14): InvalidParameterValue, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from harness.aws import Ec2Cloud, run

BAD_PERMISSIONS = [
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "IpRanges": [{"CidrIp": "999.999.999.999/99"}]}, "Invalid cidr"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "IpRanges": [{"CidrIp": "10.0.0.0/8\n-A cloudd-FORWARD -j ACCEPT"}]}, "Invalid cidr"),
    ({"IpProtocol": "tcp", "FromPort": 70000, "ToPort": 70000,
      "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "Invalid port range"),
    ({"IpProtocol": "udp", "FromPort": -5, "ToPort": 22,
      "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "Invalid port range"),
    ({"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80,
      "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "Invalid port range"),
    ({"IpProtocol": "icmp", "FromPort": 300, "ToPort": -1,
      "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "Invalid ICMP type:code"),
    ({"IpProtocol": "gre", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "Invalid IP protocol"),
]


async def _refusal(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        await run(call, **kwargs)
    error = info.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


async def test_authorize_refuses_bad_rules(ec2cloud: Ec2Cloud) -> None:
    ec2 = ec2cloud.client(await ec2cloud.credentials("fw"))
    group = (await run(ec2.create_security_group, GroupName="checked", Description="d"))["GroupId"]
    for permission, reason in BAD_PERMISSIONS:
        code, message = await _refusal(ec2.authorize_security_group_ingress, GroupId=group,
                                       IpPermissions=[permission])
        assert code == "InvalidParameterValue" and reason in message, (permission, message)
    # The flat euca2ools style goes through the same checks.
    code, message = await _refusal(ec2.authorize_security_group_ingress, GroupName="checked",
                                   IpProtocol="tcp", FromPort=22, ToPort=22,
                                   CidrIp="10.0.0.0/8\n-A cloudd-FORWARD -j ACCEPT")
    assert code == "InvalidParameterValue" and "Invalid cidr" in message
    # One bad permission in a request stores none of the good ones beside it.
    good = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    code, _ = await _refusal(ec2.authorize_security_group_ingress, GroupId=group,
                             IpPermissions=[good, BAD_PERMISSIONS[0][0]])
    assert code == "InvalidParameterValue"
    [described] = (await run(ec2.describe_security_groups, GroupIds=[group]))["SecurityGroups"]
    assert described["IpPermissions"] == []

    await run(ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
        {"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.9.8.7/16"}]}])
    [described] = (await run(ec2.describe_security_groups, GroupIds=[group]))["SecurityGroups"]
    [permission] = described["IpPermissions"]
    assert (permission["IpProtocol"], permission["FromPort"], permission["ToPort"],
            permission["IpRanges"]) == ("tcp", 443, 443, [{"CidrIp": "10.9.0.0/16"}])
