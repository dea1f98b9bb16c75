"""Who may do what: bad keys, tampered or stale signatures, other projects, SigV2, and
aws-chunked bodies with per-chunk signatures."""

from __future__ import annotations

import datetime
import hashlib
import hmac
from unittest import mock

import aiohttp
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from harness.aws import S3Cloud, get_object, run
from harness.users import Keys

from cloudd.awsauth import sigv4

from .test_boto3 import code


async def assert_nothing_written(s3cloud: S3Cloud, keys: Keys, bucket: str) -> None:
    listed = await run(s3cloud.client(keys).list_objects_v2, Bucket=bucket)
    assert "Contents" not in listed


async def test_refusals_have_the_right_codes_and_write_nothing(s3cloud: S3Cloud) -> None:
    owner = await s3cloud.credentials()
    await run(s3cloud.client(owner).create_bucket, Bucket="guarded")

    wrong_secret = Keys(owner.access, "not-the-secret", owner.project_id)
    with pytest.raises(ClientError) as err:
        await run(s3cloud.client(wrong_secret).put_object, Bucket="guarded", Key="k", Body=b"x" * 5000)
    assert code(err) == (403, "SignatureDoesNotMatch")

    unknown = Keys("no-such-access-key", owner.secret, owner.project_id)
    with pytest.raises(ClientError) as err:
        await run(s3cloud.client(unknown).put_object, Bucket="guarded", Key="k", Body=b"x")
    assert code(err) == (403, "InvalidAccessKeyId")

    other = await s3cloud.credentials(project="rival")
    rival = s3cloud.client(other)
    for call, params in ((rival.put_object, {"Key": "k", "Body": b"x"}),
                         (rival.list_objects_v2, {}), (rival.delete_bucket, {}),
                         (rival.get_object, {"Key": "k"})):
        with pytest.raises(ClientError) as err:
            await run(call, Bucket="guarded", **params)
        assert code(err) == (403, "AccessDenied")
    with pytest.raises(ClientError) as err:
        await run(rival.create_bucket, Bucket="guarded")
    assert code(err) == (409, "BucketAlreadyExists")
    assert (await run(rival.list_buckets))["Buckets"] == []

    # A correctly signed request made 20 minutes ago.
    stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    status, body = await signed_request(s3cloud, owner, "PUT", "/guarded/stale", b"data",
                                        amz_date=stale)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body

    # A signature altered by one character.
    status, body = await signed_request(s3cloud, owner, "PUT", "/guarded/tampered", b"data",
                                        tamper=True)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    # The body does not match its signed SHA-256.
    status, body = await signed_request(s3cloud, owner, "PUT", "/guarded/swapped", b"data",
                                        body_override=b"evil")
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body

    await assert_nothing_written(s3cloud, owner, "guarded")
    status, _ = await signed_request(s3cloud, owner, "PUT", "/guarded/fine", b"data")
    assert status == 200


async def signed_request(cloud: S3Cloud, keys: Keys, method: str, path: str, body: bytes,
                         amz_date: datetime.datetime | None = None, tamper: bool = False,
                         body_override: bytes | None = None,
                         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A request signed by botocore's own SigV4 signer, sent with aiohttp."""
    request = AWSRequest(method=method, url=cloud.s3_url + path, data=body, headers=headers or {})
    signer = S3SigV4Auth(Credentials(keys.access, keys.secret), "s3", "us-east-1")
    # The client's clock, set back for the stale-date case.
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=amz_date or datetime.datetime.now(datetime.UTC)):
        signer.add_auth(request)
    sent = dict(request.headers.items())
    if tamper:
        sent["Authorization"] = sent["Authorization"][:-1] + (
            "0" if sent["Authorization"][-1] != "0" else "1")
    async with cloud.session.request(method, cloud.s3_url + path, headers=sent,
                                     data=body if body_override is None else body_override) as resp:
        return resp.status, await resp.read()


async def test_sigv2_and_cross_project_listing(s3cloud: S3Cloud) -> None:
    keys = await s3cloud.credentials(project="legacy")
    v2 = s3cloud.client(keys, signature_version="s3")
    await run(v2.create_bucket, Bucket="old-style")
    await run(v2.put_object, Bucket="old-style", Key="dir/file name.txt", Body=b"v2 bytes",
              Metadata={"k": "v"})
    body, got = await get_object(v2, Bucket="old-style", Key="dir/file name.txt")
    assert body == b"v2 bytes" and got["Metadata"] == {"k": "v"}
    upload = (await run(v2.create_multipart_upload, Bucket="old-style", Key="mp"))["UploadId"]
    await run(v2.upload_part, Bucket="old-style", Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
    await run(v2.abort_multipart_upload, Bucket="old-style", Key="mp", UploadId=upload)
    bad = s3cloud.client(Keys(keys.access, "wrong", keys.project_id), signature_version="s3")
    with pytest.raises(ClientError) as err:
        await run(bad.list_objects, Bucket="old-style")
    assert code(err) == (403, "SignatureDoesNotMatch")
    # The admin project does not see the legacy project's bucket.
    admin = s3cloud.client(await s3cloud.credentials())
    assert (await run(admin.list_buckets))["Buckets"] == []
    url = await run(v2.generate_presigned_url, "get_object",
                    Params={"Bucket": "old-style", "Key": "dir/file name.txt"}, ExpiresIn=60)
    async with s3cloud.session.get(url, skip_auto_headers=["Content-Type"]) as resp:
        assert resp.status == 200 and await resp.read() == b"v2 bytes"


def chunk_signature(key: bytes, amz_date: str, scope: str, previous: str, data: bytes) -> str:
    """The AWS spec's chunk string to sign, written out independently of the server's code."""
    to_sign = "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous,
                         hashlib.sha256(b"").hexdigest(), hashlib.sha256(data).hexdigest()))
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_chunk_signatures_match_the_aws_documented_example() -> None:
    # AWS's "Transferring Payload in Multiple Chunks" example (SigV4 documentation).
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
    previous = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    expected = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
    for data, wanted in zip((b"a" * 65536, b"a" * 1024, b""), expected, strict=True):
        previous = sigv4.sign(key, sigv4.chunk_string_to_sign(
            "20130524T000000Z", "20130524/us-east-1/s3/aws4_request", previous,
            hashlib.sha256(data).hexdigest()))
        assert previous == wanted


async def put_signed_chunks(cloud: S3Cloud, keys: Keys, path: str, chunks: list[bytes],
                            corrupt: bool = False) -> tuple[int, bytes]:
    payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    total = sum(len(c) for c in chunks)
    request = AWSRequest(method="PUT", url=cloud.s3_url + path, headers={
        "x-amz-content-sha256": payload, "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(total)})
    # The generic signer keeps our x-amz-content-sha256 (the S3 one recomputes it).
    SigV4Auth(Credentials(keys.access, keys.secret), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    seed = headers["Authorization"].rpartition("Signature=")[2]
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = sigv4.signing_key(keys.secret, amz_date[:8], "us-east-1", "s3")
    body, previous = b"", seed
    for data in [*chunks, b""]:
        previous = chunk_signature(key, amz_date, scope, previous, data)
        sent = data.replace(b"a", b"b") if corrupt and data else data
        body += f"{len(data):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    async with cloud.session.put(cloud.s3_url + path, headers=headers, data=body) as resp:
        return resp.status, await resp.read()


async def test_signed_aws_chunked_upload(s3cloud: S3Cloud) -> None:
    keys = await s3cloud.credentials()
    s3 = s3cloud.client(keys)
    await run(s3.create_bucket, Bucket="chunky")
    chunks = [b"a" * 65536, b"a" * 1024]
    status, body = await put_signed_chunks(s3cloud, keys, "/chunky/good", chunks)
    assert status == 200, body
    stored, got = await get_object(s3, Bucket="chunky", Key="good")
    assert stored == b"".join(chunks) and "ContentEncoding" not in got
    status, body = await put_signed_chunks(s3cloud, keys, "/chunky/bad", chunks, corrupt=True)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    listed = await run(s3.list_objects_v2, Bucket="chunky")
    assert [o["Key"] for o in listed["Contents"]] == ["good"]


async def test_unsigned_payload_is_accepted(s3cloud: S3Cloud) -> None:
    keys = await s3cloud.credentials()
    await run(s3cloud.client(keys).create_bucket, Bucket="unsigned")
    status, _ = await signed_request(s3cloud, keys, "PUT", "/unsigned/x", b"hello",
                                     headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert status == 200
    async with aiohttp.ClientSession() as session:
        async with session.get(s3cloud.s3_url + "/unsigned/x") as resp:  # anonymous, private
            assert resp.status == 403 and b"<Code>AccessDenied</Code>" in await resp.read()
