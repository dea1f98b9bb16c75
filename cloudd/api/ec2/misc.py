"""DescribeAvailabilityZones, DescribeRegions, DescribeAccountAttributes."""

from __future__ import annotations

from typing import Any

from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.xml import Ec2Error
from cloudd.compute import hosts, quota

DEFAULT_ZONE = "nova"


async def describe_availability_zones(req: Ec2Request) -> dict[str, Any]:
    """The zones of the compute nodes (Nova's `nova` when there is none); `internal` hidden."""
    req.require_read()
    zones = [z for z in await hosts.availability_zones(req.db) if z != "internal"]
    zones = zones or [DEFAULT_ZONE]
    wanted = req.params.strings("ZoneName")
    filters = req.params.filters()
    region = req.host.config.ec2.region
    items = []
    for zone in zones:
        if wanted and zone not in wanted:
            continue
        fields = {"zone-name": zone, "state": "available", "region-name": region}
        if all(filter_matches(v, fields.get(k)) for k, v in filters.items()):
            items.append({"zoneName": zone, "zoneState": "available", "regionName": region,
                          "zoneId": zone, "zoneType": "availability-zone", "messageSet": []})
    for zone in wanted:
        if zone not in zones:
            raise Ec2Error("InvalidParameterValue", f"Invalid availability zone: [{zone}]")
    return {"availabilityZoneInfo": items}


async def describe_regions(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    region = req.host.config.ec2.region
    wanted = req.params.strings("RegionName")
    if wanted and region not in wanted:
        raise Ec2Error("InvalidParameterValue", f"Invalid region: {', '.join(wanted)}")
    return {"regionInfo": [{"regionName": region, "regionEndpoint": req.endpoint,
                            "optInStatus": "opt-in-not-required"}]}


async def describe_account_attributes(req: Ec2Request) -> dict[str, Any]:
    """What boto3/awscli users ask: platforms (EC2-Classic style, no VPC), the instance limit."""
    req.require_read()
    limits = await quota.limits(req.db, req.project_id)
    attributes = {
        "supported-platforms": ["EC2"],
        "default-vpc": ["none"],
        "max-instances": [str(limits.get("instances", -1))],
        "max-elastic-ips": [str(getattr(req.host.config.network, "quota_floating_ips", 10))],
        "vpc-max-security-groups-per-interface": ["5"],
    }
    wanted = req.params.strings("AttributeName")
    return {"accountAttributeSet": [
        {"attributeName": name, "attributeValueSet": [{"attributeValue": v} for v in values]}
        for name, values in attributes.items() if not wanted or name in wanted]}
