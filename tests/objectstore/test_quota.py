"""Storage quotas of S3 objects per project (bytes and count, parts of unfinished uploads
included), refused as QuotaExceeded, and the expiry of multipart uploads left unfinished."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from harness.aws import S3Cloud, get_object, run

from cloudd import storage_quota
from cloudd.compute import quota
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.image import records
from cloudd.objectstore import meta
from cloudd.objectstore.service import ObjectstoreService, expire_uploads

from .test_boto3 import code

KIB = 1024


async def refused(call: object, **params: object) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        await run(call, **params)  # type: ignore[arg-type]
    return code(err)


async def test_object_bytes_and_count_quota(s3cloud: S3Cloud) -> None:
    keys = await s3cloud.credentials(project="quota")
    db = s3cloud.host.get(DatabaseService).db
    await storage_quota_set(db, keys.project_id, object_size_total=1, object_count_total=3)
    s3 = s3cloud.client(keys)
    await run(s3.create_bucket, Bucket="small")
    await run(s3.put_object, Bucket="small", Key="a", Body=b"a" * 700 * KIB)
    assert await refused(s3.put_object, Bucket="small", Key="b",
                         Body=b"b" * 400 * KIB) == (403, "QuotaExceeded")
    # Replacing an object frees its bytes first.
    await run(s3.put_object, Bucket="small", Key="a", Body=b"A" * 900 * KIB)
    assert (await get_object(s3, Bucket="small", Key="a"))[0] == b"A" * 900 * KIB
    # A copy is a new object like any other.
    assert await refused(s3.copy_object, Bucket="small", Key="a2",
                         CopySource={"Bucket": "small", "Key": "a"}) == (403, "QuotaExceeded")
    # Parts of an unfinished upload hold the quota too.
    upload = (await run(s3.create_multipart_upload, Bucket="small", Key="mp"))["UploadId"]
    assert await refused(s3.upload_part, Bucket="small", Key="mp", UploadId=upload, PartNumber=1,
                         Body=b"p" * 200 * KIB) == (403, "QuotaExceeded")
    await run(s3.abort_multipart_upload, Bucket="small", Key="mp", UploadId=upload)
    # The count: three objects, then no fourth.
    await run(s3.put_object, Bucket="small", Key="b", Body=b"b")
    await run(s3.put_object, Bucket="small", Key="c", Body=b"c")
    assert await refused(s3.put_object, Bucket="small", Key="d", Body=b"d") == \
        (403, "QuotaExceeded")
    listed = await run(s3.list_objects_v2, Bucket="small")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["a", "b", "c"]
    assert storage_quota.storage_usage(await records.usage(db, keys.project_id),
                                       await meta.usage(db, keys.project_id)) == {
        "image_size_total": 0, "image_count_total": 0, "object_size_total": 1,
        "object_count_total": 3}
    # Other projects are not affected by this one's quota.
    other = s3cloud.client(await s3cloud.credentials(project="roomy"))
    await run(other.create_bucket, Bucket="roomy")
    await run(other.put_object, Bucket="roomy", Key="big", Body=b"x" * 2048 * KIB)


async def storage_quota_set(db: Database, project_id: str, **limits: int) -> None:
    """What `cloudd manage quota set` writes (the compute quotas' table)."""
    await quota.set_limits(db, project_id, limits, time.time())


async def test_unfinished_multipart_uploads_expire(s3cloud: S3Cloud) -> None:
    keys = await s3cloud.credentials()
    db = s3cloud.host.get(DatabaseService).db
    store = s3cloud.host.get(ObjectstoreService).store
    assert store is not None
    s3 = s3cloud.client(keys)
    await run(s3.create_bucket, Bucket="parts")
    await run(s3.put_object, Bucket="parts", Key="kept", Body=b"kept")
    old = (await run(s3.create_multipart_upload, Bucket="parts", Key="old"))["UploadId"]
    for number in (1, 2):
        await run(s3.upload_part, Bucket="parts", Key="old", UploadId=old, PartNumber=number,
                  Body=b"o" * 64 * KIB)
    fresh = (await run(s3.create_multipart_upload, Bucket="parts", Key="fresh"))["UploadId"]
    await run(s3.upload_part, Bucket="parts", Key="fresh", UploadId=fresh, PartNumber=1,
              Body=b"f" * KIB)
    # The old upload was begun two days ago.
    await db.execute("UPDATE multipart_uploads SET created_at = $1 WHERE upload_id = $2",
                     time.time() - 2 * 86400, old)
    files_before = len(await store.list("parts"))
    assert await expire_uploads(db, store, max_age=86400) == 1
    uploads = (await run(s3.list_multipart_uploads, Bucket="parts")).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [fresh]
    assert await refused(s3.list_parts, Bucket="parts", Key="old", UploadId=old) == \
        (404, "NoSuchUpload")
    assert len(await store.list("parts")) == files_before - 2  # the two parts' files are gone
    assert (await get_object(s3, Bucket="parts", Key="kept"))[0] == b"kept"
    await run(s3.complete_multipart_upload, Bucket="parts", Key="fresh", UploadId=fresh,
              MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": (await run(
                  s3.list_parts, Bucket="parts", Key="fresh", UploadId=fresh))["Parts"][0]["ETag"]}]})
    assert (await get_object(s3, Bucket="parts", Key="fresh"))[0] == b"f" * KIB
