"""boto3 against the object store: buckets, objects, listing, ranges, copy, multipart, errors."""

from __future__ import annotations

import hashlib
import os
import urllib.request

import pytest
from botocore.exceptions import ClientError
from harness.aws import S3Cloud, get_object, run


def fetch_url(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def code(err: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = err.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


async def test_bucket_and_object_round_trip(s3cloud: S3Cloud) -> None:
    s3 = s3cloud.client(await s3cloud.credentials())
    await run(s3.create_bucket, Bucket="pics")
    assert [b["Name"] for b in (await run(s3.list_buckets))["Buckets"]] == ["pics"]
    await run(s3.head_bucket, Bucket="pics")
    with pytest.raises(ClientError) as err:
        await run(s3.create_bucket, Bucket="pics")
    assert code(err) == (409, "BucketAlreadyOwnedByYou")

    data = os.urandom(70_000)
    put = await run(s3.put_object, Bucket="pics", Key="dir/a b+c.bin", Body=data,
                    ContentType="image/png", Metadata={"colour": "blue"})
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    body, got = await get_object(s3, Bucket="pics", Key="dir/a b+c.bin")
    assert body == data
    assert (got["ContentType"], got["Metadata"], got["ContentLength"]) == (
        "image/png", {"colour": "blue"}, len(data))
    assert got["ETag"] == put["ETag"] and got["LastModified"]
    head = await run(s3.head_object, Bucket="pics", Key="dir/a b+c.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]

    body, ranged = await get_object(s3, Bucket="pics", Key="dir/a b+c.bin", Range="bytes=100-199")
    assert body == data[100:200]
    assert ranged["ContentRange"] == f"bytes 100-199/{len(data)}"
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    body, _ = await get_object(s3, Bucket="pics", Key="dir/a b+c.bin", Range="bytes=-10")
    assert body == data[-10:]
    with pytest.raises(ClientError) as err:
        await run(s3.get_object, Bucket="pics", Key="dir/a b+c.bin", Range=f"bytes={len(data)}-")
    assert code(err) == (416, "InvalidRange")
    with pytest.raises(ClientError) as err:
        await run(s3.get_object, Bucket="pics", Key="dir/a b+c.bin", IfNoneMatch=put["ETag"])
    assert code(err)[0] == 304

    with pytest.raises(ClientError) as err:
        await run(s3.delete_bucket, Bucket="pics")
    assert code(err) == (409, "BucketNotEmpty")
    with pytest.raises(ClientError) as err:
        await run(s3.get_object, Bucket="pics", Key="missing")
    assert code(err) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as err:
        await run(s3.head_object, Bucket="pics", Key="missing")
    assert code(err)[0] == 404

    copied = await run(s3.copy_object, Bucket="pics", Key="copy.bin",
                       CopySource={"Bucket": "pics", "Key": "dir/a b+c.bin"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert (await get_object(s3, Bucket="pics", Key="copy.bin"))[0] == data

    deleted = await run(s3.delete_objects, Bucket="pics", Delete={"Objects": [
        {"Key": "dir/a b+c.bin"}, {"Key": "copy.bin"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["copy.bin", "dir/a b+c.bin"]
    await run(s3.delete_bucket, Bucket="pics")
    with pytest.raises(ClientError) as err:
        await run(s3.head_bucket, Bucket="pics")
    assert code(err)[0] == 404
    assert list((s3cloud.state_dir / "buckets").iterdir()) == []


async def test_listing_v1_v2_prefix_delimiter_paging(s3cloud: S3Cloud) -> None:
    s3 = s3cloud.client(await s3cloud.credentials())
    await run(s3.create_bucket, Bucket="tree")
    keys = ["a", "a/1", "a/2", "b/x/1", "b/y", "c", "z z", "é/ü"]  # UTF-8 byte order
    for key in keys:
        await run(s3.put_object, Bucket="tree", Key=key, Body=key.encode())

    v2 = await run(s3.list_objects_v2, Bucket="tree")
    assert [o["Key"] for o in v2["Contents"]] == keys and v2["KeyCount"] == len(keys)
    top = await run(s3.list_objects_v2, Bucket="tree", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a", "c", "z z"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "é/"]
    under_b = await run(s3.list_objects_v2, Bucket="tree", Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in under_b["Contents"]] == ["b/y"]
    assert [p["Prefix"] for p in under_b["CommonPrefixes"]] == ["b/x/"]

    seen, token = [], None  # paging two at a time, with the delimiter
    while True:
        extra: dict[str, str] = {"ContinuationToken": token} if token else {}
        page = await run(s3.list_objects_v2, Bucket="tree", Delimiter="/", MaxKeys=2, **extra)
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert sorted(seen) == ["a", "a/", "b/", "c", "z z", "é/"]
    after = await run(s3.list_objects_v2, Bucket="tree", StartAfter="b/y")
    assert [o["Key"] for o in after["Contents"]] == ["c", "z z", "é/ü"]

    v1 = await run(s3.list_objects, Bucket="tree", Marker="a/2", MaxKeys=3)
    assert [o["Key"] for o in v1["Contents"]] == ["b/x/1", "b/y", "c"] and v1["IsTruncated"]
    paginator = s3.get_paginator("list_objects")
    pages = await run(lambda: list(paginator.paginate(Bucket="tree", PaginationConfig={
        "PageSize": 3})))
    assert [o["Key"] for page in pages for o in page["Contents"]] == keys


async def test_multipart_out_of_order_and_validation(s3cloud: S3Cloud) -> None:
    s3 = s3cloud.client(await s3cloud.credentials())
    await run(s3.create_bucket, Bucket="big")
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1234)
    upload = (await run(s3.create_multipart_upload, Bucket="big", Key="blob",
                        ContentType="application/x-test"))["UploadId"]
    etag2 = (await run(s3.upload_part, Bucket="big", Key="blob", UploadId=upload, PartNumber=2,
                       Body=part2))["ETag"]
    etag1 = (await run(s3.upload_part, Bucket="big", Key="blob", UploadId=upload, PartNumber=1,
                       Body=part1))["ETag"]
    listed = await run(s3.list_parts, Bucket="big", Key="blob", UploadId=upload)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, len(part1)), (2, 1234)]
    with pytest.raises(ClientError) as err:
        await run(s3.complete_multipart_upload, Bucket="big", Key="blob", UploadId=upload,
                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'},
                                             {"PartNumber": 2, "ETag": etag2}]})
    assert code(err) == (400, "InvalidPart")
    with pytest.raises(ClientError) as err:
        await run(s3.complete_multipart_upload, Bucket="big", Key="blob", UploadId=upload,
                  MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": etag2},
                                             {"PartNumber": 1, "ETag": etag1}]})
    assert code(err) == (400, "InvalidPartOrder")
    assert "Contents" not in await run(s3.list_objects_v2, Bucket="big")

    done = await run(s3.complete_multipart_upload, Bucket="big", Key="blob", UploadId=upload,
                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1},
                                                {"PartNumber": 2, "ETag": etag2}]})
    md5s = b"".join(bytes.fromhex(e.strip('"')) for e in (etag1, etag2))
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-2"'
    body, got = await get_object(s3, Bucket="big", Key="blob")
    assert body == part1 + part2 and got["ContentType"] == "application/x-test"
    with pytest.raises(ClientError) as err:
        await run(s3.list_parts, Bucket="big", Key="blob", UploadId=upload)
    assert code(err) == (404, "NoSuchUpload")

    aborted = (await run(s3.create_multipart_upload, Bucket="big", Key="gone"))["UploadId"]
    await run(s3.upload_part, Bucket="big", Key="gone", UploadId=aborted, PartNumber=1, Body=b"x")
    await run(s3.abort_multipart_upload, Bucket="big", Key="gone", UploadId=aborted)
    assert [o["Key"] for o in (await run(s3.list_objects_v2, Bucket="big"))["Contents"]] == ["blob"]


async def test_presigned_get_and_public_read(s3cloud: S3Cloud) -> None:
    s3 = s3cloud.client(await s3cloud.credentials())
    await run(s3.create_bucket, Bucket="share")
    await run(s3.put_object, Bucket="share", Key="private.txt", Body=b"secret data")
    await run(s3.put_object, Bucket="share", Key="open.txt", Body=b"for all", ACL="public-read")
    url = await run(s3.generate_presigned_url, "get_object",
                    Params={"Bucket": "share", "Key": "private.txt"}, ExpiresIn=60)
    assert await run(fetch_url, url) == (200, b"secret data")
    status, body = await run(fetch_url, url.replace("Signature=", "Signature=0"))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body

    anonymous = s3cloud.client(None)
    assert (await get_object(anonymous, Bucket="share", Key="open.txt"))[0] == b"for all"
    with pytest.raises(ClientError) as err:
        await run(anonymous.get_object, Bucket="share", Key="private.txt")
    assert code(err) == (403, "AccessDenied")
    with pytest.raises(ClientError) as err:
        await run(anonymous.put_object, Bucket="share", Key="new", Body=b"x")
    assert code(err) == (403, "AccessDenied")
