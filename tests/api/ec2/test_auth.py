"""EC2 authentication: boto3's SigV4 and SigV2, hand-signed SigV2 (euca2ools' form), and the
errors boto3 parses into ClientError: bad signatures, unknown keys, stale timestamps, unknown
actions."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.auth
import pytest
from botocore.exceptions import ClientError
from harness.aws import Ec2Cloud, run
from harness.users import Keys


async def test_boto3_sigv4_and_sigv2(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    for version in ("v4", "v2"):
        ec2 = ec2cloud.client(keys, signature_version=version)
        regions = await run(ec2.describe_regions)
        assert regions["Regions"] == [{"RegionName": "RegionOne", "Endpoint": ec2cloud.ec2_url,
                                       "OptInStatus": "opt-in-not-required"}]
        zones = await run(ec2.describe_availability_zones)
        assert [z["ZoneName"] for z in zones["AvailabilityZones"]] == ["nova"]
        assert zones["ResponseMetadata"]["RequestId"]


async def test_catalog_lists_the_ec2_endpoint(ec2cloud: Ec2Cloud) -> None:
    async with ec2cloud.session.get(f"{ec2cloud.base}/identity/v3/auth/catalog",
                                    headers={"X-Auth-Token": ec2cloud.admin_token}) as resp:
        catalog = (await resp.json())["catalog"]
    urls = [e["url"] for s in catalog if s["type"] == "ec2" for e in s["endpoints"]]
    assert urls and set(urls) == {ec2cloud.ec2_url}


async def _code_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        await run(call, **kwargs)
    error = info.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


async def test_bad_keys_and_signatures(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    wrong_secret = Keys(keys.access, "not-the-secret", keys.project_id, keys.user_id)
    unknown = Keys("AKIDUNKNOWN", keys.secret, keys.project_id, keys.user_id)
    for version in ("v4", "v2"):
        assert await _code_of(ec2cloud.client(wrong_secret, signature_version=version)
                              .describe_regions) == ("SignatureDoesNotMatch", 403)
        assert await _code_of(ec2cloud.client(unknown, signature_version=version)
                              .describe_regions) == ("AuthFailure", 401)


async def test_stale_sigv4_date_is_request_expired(ec2cloud: Ec2Cloud,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    keys = await ec2cloud.credentials()
    ec2 = ec2cloud.client(keys)
    stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    # botocore signs correctly, but with a clock 20 minutes behind.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: stale)
    assert await _code_of(ec2.describe_regions) == ("RequestExpired", 400)


def _sigv2_form(url: str, keys: Keys, params: dict[str, str], when: float) -> dict[str, str]:
    """A SigV2 form as euca2ools and boto 2 sent it (ec2-s3.md §7.2)."""
    form = dict(params, AWSAccessKeyId=keys.access, SignatureVersion="2",
                SignatureMethod="HmacSHA256", Version="2016-11-15",
                Timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)))
    split = urlsplit(url)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(form.items()))
    to_sign = f"POST\n{split.netloc}\n{split.path}\n{query}"
    digest = hmac.new(keys.secret.encode(), to_sign.encode(), hashlib.sha256).digest()
    form["Signature"] = base64.b64encode(digest).decode()
    return form


async def _post(cloud: Ec2Cloud, form: dict[str, str]) -> tuple[int, str]:
    async with cloud.session.post(cloud.ec2_url, data=form) as resp:
        return resp.status, await resp.text()


async def test_hand_signed_sigv2(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    status, body = await _post(ec2cloud, _sigv2_form(ec2cloud.ec2_url, keys,
                                                     {"Action": "DescribeRegions"}, time.time()))
    assert status == 200 and "<regionName>RegionOne</regionName>" in body, body
    status, body = await _post(ec2cloud, _sigv2_form(
        ec2cloud.ec2_url, keys, {"Action": "DescribeRegions"}, time.time() - 3600))
    assert status == 400 and "<Code>RequestExpired</Code>" in body
    form = _sigv2_form(ec2cloud.ec2_url, keys, {"Action": "DescribeRegions"}, time.time())
    form["Action"] = "DescribeKeyPairs"  # tampered after signing
    status, body = await _post(ec2cloud, form)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in body
    status, body = await _post(ec2cloud, {"Action": "DescribeRegions"})
    assert status == 401 and "<Code>AuthFailure</Code>" in body
    assert body.startswith("<?xml") and "<RequestID>" in body


async def test_unknown_action_is_invalid_action(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    ec2 = ec2cloud.client(keys)

    def rename_action(params: dict[str, Any], **_: Any) -> None:
        params["body"]["Action"] = "LaunchRockets"

    ec2.meta.events.register("before-call.ec2.DescribeRegions", rename_action)
    assert await _code_of(ec2.describe_regions) == ("InvalidAction", 400)
    status, body = await _post(ec2cloud, _sigv2_form(ec2cloud.ec2_url, keys,
                                                     {"Action": "Nope"}, time.time()))
    assert status == 400 and "<Code>InvalidAction</Code>" in body
