"""Every S3 request carries the role of its key's user in the key's project: a reader reads,
a member writes, and a user removed from the project, disabled or deleted loses its keys at
once. SigV4 is exact: the scope's day, region and service, a signed host and a real payload
hash, each tampered with in a request botocore signed."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from harness.aws import S3Cloud, get_object, run
from harness.users import Keys, member_keys

from cloudd.awsauth import sigv4

from .test_awscli import AWS, aws
from .test_boto3 import code


async def project_user(cloud: S3Cloud, project_id: str, role: str) -> tuple[str, Keys]:
    """A new user with `role` on the project, and an EC2 key of it there: (user id, keys)."""
    keys = await member_keys(cloud.identity, project_id, role)
    return keys.user_id, keys


async def refused(call: Any, **params: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        await run(call, **params)
    return code(err)


async def aws_fails(cloud: S3Cloud, keys: Keys, *args: str) -> str:
    """Run the real awscli expecting a failure; its error output."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cloud.state_dir),
           "AWS_ACCESS_KEY_ID": keys.access, "AWS_SECRET_ACCESS_KEY": keys.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    proc = await asyncio.create_subprocess_exec(
        AWS, "--endpoint-url", cloud.s3_url, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode != 0, f"aws {' '.join(args)} succeeded"
    return err.decode()


async def test_reader_reads_member_writes(s3cloud: S3Cloud, tmp_path: Any) -> None:
    member = await s3cloud.credentials(project="team")
    _, reader = await project_user(s3cloud, member.project_id, "reader")
    writer = s3cloud.client(member)
    await run(writer.create_bucket, Bucket="team-data")
    await run(writer.put_object, Bucket="team-data", Key="report", Body=b"numbers")

    looker = s3cloud.client(reader)
    assert [b["Name"] for b in (await run(looker.list_buckets))["Buckets"]] == ["team-data"]
    assert (await get_object(looker, Bucket="team-data", Key="report"))[0] == b"numbers"
    for call, params in ((looker.put_object, {"Key": "report", "Body": b"forged"}),
                         (looker.put_object, {"Key": "new", "Body": b"x"}),
                         (looker.delete_object, {"Key": "report"}),
                         (looker.create_multipart_upload, {"Key": "mp"}),
                         (looker.delete_objects, {"Delete": {"Objects": [{"Key": "report"}]}}),
                         (looker.put_bucket_acl, {"ACL": "public-read"}),
                         (looker.delete_bucket, {})):
        assert await refused(call, Bucket="team-data", **params) == (403, "AccessDenied"), call
    assert await refused(looker.create_bucket, Bucket="reader-bucket") == (403, "AccessDenied")

    # The real awscli with the reader's key: ls works, cp is refused.
    assert "report" in await aws(s3cloud, reader, "s3", "ls", "s3://team-data/")
    upload = tmp_path / "upload.txt"
    upload.write_bytes(b"from the cli")
    assert "AccessDenied" in await aws_fails(s3cloud, reader, "s3", "cp", str(upload),
                                             "s3://team-data/cli")
    assert "AccessDenied" in await aws_fails(s3cloud, reader, "s3", "rm", "s3://team-data/report")
    # Nothing the reader tried changed anything.
    listed = await run(writer.list_objects_v2, Bucket="team-data")
    assert [o["Key"] for o in listed["Contents"]] == ["report"]
    assert (await get_object(writer, Bucket="team-data", Key="report"))[0] == b"numbers"
    await aws(s3cloud, member, "s3", "cp", str(upload), "s3://team-data/cli")


async def test_removed_disabled_and_deleted_users_lose_their_keys_at_once(
        s3cloud: S3Cloud) -> None:
    owner = await s3cloud.credentials(project="shop")
    await run(s3cloud.client(owner).create_bucket, Bucket="shop-bucket")
    removed_id, removed = await project_user(s3cloud, owner.project_id, "member")
    disabled_id, disabled = await project_user(s3cloud, owner.project_id, "member")
    deleted_id, deleted = await project_user(s3cloud, owner.project_id, "member")
    for keys in (removed, disabled, deleted):
        await run(s3cloud.client(keys).put_object, Bucket="shop-bucket", Key=keys.access,
                  Body=b"ok")

    member_role = (await s3cloud.identity("GET", "/roles?name=member"))["roles"][0]["id"]
    await s3cloud.identity("DELETE", f"/projects/{owner.project_id}/users/{removed_id}/roles/"
                           f"{member_role}")
    await s3cloud.identity("PATCH", f"/users/{disabled_id}", {"user": {"enabled": False}})
    await s3cloud.identity("DELETE", f"/users/{deleted_id}")

    for keys in (removed, disabled):
        client = s3cloud.client(keys)
        assert await refused(client.list_objects_v2, Bucket="shop-bucket") == (403, "AccessDenied")
        assert await refused(client.put_object, Bucket="shop-bucket", Key="late",
                             Body=b"x") == (403, "AccessDenied")
        assert await refused(client.list_buckets) == (403, "AccessDenied")
        assert "AccessDenied" in await aws_fails(s3cloud, keys, "s3", "ls", "s3://shop-bucket/")
    gone = s3cloud.client(deleted)
    assert await refused(gone.list_objects_v2, Bucket="shop-bucket") == (403, "InvalidAccessKeyId")
    # A wrong secret for a removed user's key says nothing about its user.
    wrong = s3cloud.client(Keys(removed.access, "not-the-secret", removed.project_id))
    assert await refused(wrong.list_buckets) == (403, "SignatureDoesNotMatch")
    listed = await run(s3cloud.client(owner).list_objects_v2, Bucket="shop-bucket")
    assert "late" not in [o["Key"] for o in listed["Contents"]]


async def send_signed(cloud: S3Cloud, keys: Keys, method: str, path: str, body: bytes, *,
                      region: str = "us-east-1", service: str = "s3",
                      headers: dict[str, str] | None = None,
                      edit: Any = None) -> tuple[int, bytes]:
    """A request signed by botocore, optionally edited (headers dict) before it is sent."""
    request = AWSRequest(method=method, url=cloud.s3_url + path, data=body, headers=headers or {})
    S3SigV4Auth(Credentials(keys.access, keys.secret), service, region).add_auth(request)
    sent = dict(request.headers.items())
    if edit is not None:
        edit(sent)
    async with cloud.session.request(method, cloud.s3_url + path, headers=sent,
                                     data=body) as resp:
        return resp.status, await resp.read()


def resign(keys: Keys, method: str, url: str, body: bytes, headers: dict[str, str],
           signed: list[str], amz_date: str, scope_date: str,
           region: str = "us-east-1") -> dict[str, str]:
    """Sign by hand (the spec's steps) with a chosen scope day and signed-header list, so that
    the signature itself is right and only the rule under test is broken."""
    payload = headers["x-amz-content-sha256"]
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical = "\n".join((method, urlsplit(url).path, "", lines, ";".join(signed), payload))
    scope = f"{scope_date}/{region}/s3/aws4_request"
    to_sign = "\n".join(("AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()))
    key = sigv4.signing_key(keys.secret, scope_date, region, "s3")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return headers | {"Authorization": f"AWS4-HMAC-SHA256 Credential={keys.access}/{scope}, "
                                       f"SignedHeaders={';'.join(signed)}, Signature={signature}"}


async def test_sigv4_scope_host_and_payload_hash_are_exact(s3cloud: S3Cloud) -> None:
    keys = await s3cloud.credentials()
    await run(s3cloud.client(keys).create_bucket, Bucket="exact")
    url = s3cloud.s3_url + "/exact/obj"
    now = datetime.datetime.now(datetime.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    body = b"payload"
    base = {"host": urlsplit(s3cloud.s3_url).netloc, "x-amz-date": amz_date,
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}

    async def put(headers: dict[str, str], data: bytes = body) -> tuple[int, bytes]:
        sent = {k: v for k, v in headers.items() if k != "host"}
        async with s3cloud.session.put(url, headers=sent, data=data) as resp:
            return resp.status, await resp.read()

    # Correctly signed by hand: accepted (the helper itself is right).
    signed = ["host", "x-amz-content-sha256", "x-amz-date"]
    assert (await put(resign(keys, "PUT", url, body, base, signed, amz_date, amz_date[:8])))[0] \
        == 200
    # A scope dated three days before X-Amz-Date, validly signed with that day's key.
    old_day = (now - datetime.timedelta(days=3)).strftime("%Y%m%d")
    status, reply = await put(resign(keys, "PUT", url, body, base, signed, amz_date, old_day))
    assert status == 400 and b"<Code>AuthorizationHeaderMalformed</Code>" in reply
    assert b"Invalid credential date" in reply
    # Host left out of the signed headers.
    status, reply = await put(resign(keys, "PUT", url, body, base,
                                     ["x-amz-content-sha256", "x-amz-date"], amz_date,
                                     amz_date[:8]))
    assert status == 400 and b"host header must be among the signed headers" in reply
    # A payload hash that is neither hex nor a defined value: refused, not left unverified.
    for bogus in ("not-a-hash", "UNSIGNED-PAYLOAD-X", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
                  hashlib.sha256(body).hexdigest().upper()):
        status, reply = await put(resign(keys, "PUT", url, body,
                                         base | {"x-amz-content-sha256": bogus}, signed,
                                         amz_date, amz_date[:8]), b"evil")
        assert status == 400 and b"<Code>InvalidArgument</Code>" in reply, bogus
    # A hex hash is checked against the body.
    status, reply = await put(resign(keys, "PUT", url, body, base, signed, amz_date,
                                     amz_date[:8]), b"evil!!!")
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in reply

    # botocore-signed requests for another region or service.
    status, reply = await send_signed(s3cloud, keys, "PUT", "/exact/r", b"x", region="eu-west-1")
    assert status == 400 and b"the region 'eu-west-1' is wrong; expecting 'us-east-1'" in reply
    status, reply = await send_signed(s3cloud, keys, "PUT", "/exact/s", b"x", service="ec2")
    assert status == 400 and b"incorrect service 'ec2'" in reply
    # The cloud's own region (what EC2 clients of this cloud are set up with) is accepted.
    region = s3cloud.host.config.ec2.region
    assert (await send_signed(s3cloud, keys, "PUT", "/exact/own", b"x", region=region))[0] == 200

    objects = await run(s3cloud.client(keys).list_objects_v2, Bucket="exact")
    assert sorted(o["Key"] for o in objects["Contents"]) == ["obj", "own"]
    assert (await get_object(s3cloud.client(keys), Bucket="exact", Key="obj"))[0] == body
