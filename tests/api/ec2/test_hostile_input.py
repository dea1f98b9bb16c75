"""Hostile input on the EC2 and S3 listeners (issue 15): wildcard filters in linear time, bodies
bounded before they are read, and number parameters that are 400, never 500."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from botocore.exceptions import ClientError
from harness.aws import Ec2Cloud, run
from responsiveness import healthz_while

from cloudd.image.data import import_image
from cloudd.image.records import image_store

LOOP_BUDGET = 0.1  # what the issue allows any request to hold the event loop


def rewrite_before_signing(client: Any, event: str, change: Callable[[Any], None]) -> None:
    """Alter a request boto3 built (its own validation would refuse these values) before it is
    signed, so the cloud sees a correctly signed hostile request."""
    client.meta.events.register(f"before-sign.{event}", lambda request, **_: change(request))


async def test_ec2_wildcard_filter_is_linear(ec2cloud: Ec2Cloud) -> None:
    """`*a*a*a*a*a*a*b` over 64 a's: ~10^8 steps as a backtracking regex, 1.6 s of loop."""
    path = ec2cloud.state_dir / "long-name.img"
    await asyncio.to_thread(path.write_bytes, b"\0" * 512)
    await import_image(ec2cloud.db, image_store(ec2cloud.host.config), path, "a" * 64,
                       disk_format="raw", public=True)
    ec2 = ec2cloud.client(await ec2cloud.credentials())
    hostile = run(ec2.describe_images, Filters=[{"Name": "name", "Values": ["*a*a*a*a*a*a*b"]}])
    found, worst = await healthz_while(ec2cloud.session, ec2cloud.base, hostile)
    assert found["Images"] == []
    assert worst < LOOP_BUDGET, worst
    found = await run(ec2.describe_images, Filters=[{"Name": "name", "Values": ["*a*a*a*a*a*a"]}])
    assert [i["Name"] for i in found["Images"]] == ["a" * 64]
    found = await run(ec2.describe_images, Filters=[{"Name": "name", "Values": ["a?a\\*"]}])
    assert found["Images"] == []
    with pytest.raises(ClientError) as refused:
        await run(ec2.describe_images, Filters=[{"Name": "name", "Values": ["*" * 600]}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


async def test_ec2_body_over_limit_is_413_before_authentication(ec2cloud: Ec2Cloud) -> None:
    body = b"Action=DescribeRegions&Pad=" + b"a" * (2 * 1024 * 1024)
    for data in (body, _chunks(body)):
        async with ec2cloud.session.post(ec2cloud.ec2_url, data=data, headers={
                "Content-Type": "application/x-www-form-urlencoded"}) as resp:
            text = await resp.text()
            assert resp.status == 413, text
            assert "<Code>RequestEntityTooLarge</Code>" in text


async def _chunks(body: bytes) -> Any:
    for start in range(0, len(body), 65536):
        yield body[start:start + 65536]


@pytest.mark.parametrize("count", ["9" * 5000, "9" * 40, "²"])
async def test_ec2_integer_parameters_are_400(ec2cloud: Ec2Cloud, count: str) -> None:
    ec2 = ec2cloud.client(await ec2cloud.credentials())
    rewrite_before_signing(ec2, "ec2.RunInstances", lambda r: r.data.update(MinCount=count))
    with pytest.raises(ClientError) as refused:
        await run(ec2.run_instances, ImageId="ami-00000001", MinCount=1, MaxCount=1)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("value", ["9" * 5000, "9" * 30, "²", "-1"])
async def test_s3_number_parameters_are_400(ec2cloud: Ec2Cloud, value: str) -> None:
    s3 = ec2cloud.client(await ec2cloud.credentials(), "s3")
    await run(s3.create_bucket, Bucket="hostile")
    rewrite_before_signing(s3, "s3.ListObjects", lambda r: setattr(
        r, "url", r.url.replace("max-keys=7", f"max-keys={quote(value)}")))
    with pytest.raises(ClientError) as refused:
        await run(s3.list_objects, Bucket="hostile", MaxKeys=7)
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    upload = await run(s3.create_multipart_upload, Bucket="hostile", Key="k")
    rewrite_before_signing(s3, "s3.UploadPart", lambda r: setattr(
        r, "url", r.url.replace("partNumber=3", f"partNumber={quote(value)}")))
    with pytest.raises(ClientError) as refused:
        await run(s3.upload_part, Bucket="hostile", Key="k", UploadId=upload["UploadId"],
                  PartNumber=3, Body=b"x")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_nul_characters_are_refused_before_the_database(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    with pytest.raises(ClientError) as refused:
        await run(ec2cloud.client(keys).describe_images,
                  Filters=[{"Name": "name", "Values": ["a\x00"]}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    s3 = ec2cloud.client(keys, "s3")
    await run(s3.create_bucket, Bucket="nul")
    with pytest.raises(ClientError) as refused:
        await run(s3.put_object, Bucket="nul", Key="a\x00b", Body=b"1")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as refused:
        await run(s3.list_objects, Bucket="nul", Prefix="a\x00")
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"


async def test_s3_still_lists_after_refusals(ec2cloud: Ec2Cloud) -> None:
    s3 = ec2cloud.client(await ec2cloud.credentials(), "s3")
    await run(s3.create_bucket, Bucket="fine")
    await run(s3.put_object, Bucket="fine", Key="a", Body=b"1")
    listing = await run(s3.list_objects, Bucket="fine", MaxKeys=5000)
    assert [o["Key"] for o in listing["Contents"]] == ["a"]
    async with aiohttp.ClientSession() as session, session.get(f"{ec2cloud.base}/healthz") as r:
        assert r.status in (200, 503)
