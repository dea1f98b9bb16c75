"""Object-level S3 operations: put (plain or aws-chunked), get (ranges, conditions), head, delete,
copy and the object ACL. Bytes stream both ways; nothing holds a whole object in memory."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from aiohttp import web

from cloudd import storage_quota
from cloudd.metrics import OBJECTSTORE_BYTES
from cloudd.objectstore import meta, xmlviews
from cloudd.objectstore.body import request_body, stored_content_encoding
from cloudd.objectstore.buckets import public_from_acl_header, remove_blobs, xml_response
from cloudd.objectstore.context import S3Request
from cloudd.objectstore.errors import S3Error
from cloudd.objectstore.meta import Bucket
from cloudd.objectstore.storage import ObjectNotFound, ObjectReader

MAX_OBJECT = 5 * 1024**3  # S3's single-PUT limit (and part limit)
DEFAULT_TYPE = "binary/octet-stream"
# Standard headers stored with the object and returned on GET/HEAD, as S3 does.
STORED_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Language", "Expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type", "response-content-language": "Content-Language",
    "response-expires": "Expires", "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def new_blob_name() -> str:
    return uuid.uuid4().hex  # every write gets its own file: concurrent writers never collide


def request_metadata(ctx: S3Request) -> dict[str, str]:
    headers = ctx.request.headers
    stored = {name.lower(): value for name, value in headers.items()
              if name.lower().startswith("x-amz-meta-")}
    stored.update({name: headers[name] for name in STORED_HEADERS if name in headers})
    if encoding := stored_content_encoding(ctx.request):
        stored["Content-Encoding"] = encoding
    return stored


def quota_exceeded(what: str) -> S3Error:
    return S3Error("QuotaExceeded", f"The project's storage quota for {what} is exceeded.")


async def store_stream(ctx: S3Request, bucket: str, chunks: AsyncIterator[bytes], *,
                       key: str | None = None, metered: bool = True) -> tuple[str, int, str]:
    """Write `chunks` to a new blob: (blob name, size, md5 hex). Nothing stays on error.

    Within the project's storage quota: `key` is the object the blob becomes (one more object
    unless it replaces one, whose bytes it frees); `metered=False` for bytes already counted
    (a multipart completion concatenates parts the quota counted as they came)."""
    project_id = ctx.require_principal().project_id
    replaced = await meta.get_object(ctx.db, bucket, key) if key is not None else None
    space = await storage_quota.room(ctx.db, project_id, "object",
                                     await meta.usage(ctx.db, project_id),
                                     replaced.size if replaced else 0,
                                     new_item=key is not None and replaced is None)
    if not space.count_fits:
        raise quota_exceeded("object_count_total")
    if metered:
        chunks = storage_quota.metered(chunks, project_id, space,
                                       lambda: quota_exceeded("object_size_total"))
    stored = await ctx.store.put(bucket, new_blob_name(), chunks, max_size=MAX_OBJECT)
    return stored.key, stored.size, stored.md5


async def publish(ctx: S3Request, info: meta.ObjectInfo) -> None:
    """Make the object visible (the row) and drop the blob it replaced."""
    try:
        old = await meta.put_object(ctx.db, info)
    except BaseException:
        await remove_blobs(ctx, info.bucket, [info.blob])
        raise
    await remove_blobs(ctx, info.bucket, [old])


async def put_object(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    key = ctx.object_key()
    if "x-amz-copy-source" in ctx.request.headers:
        return await copy_object(ctx, row, key)
    public = public_from_acl_header(ctx)
    content_type = ctx.request.headers.get("Content-Type", DEFAULT_TYPE)
    metadata = request_metadata(ctx)
    blob, size, md5 = await store_stream(ctx, row.name, request_body(ctx.request, ctx.principal),
                                         key=key)
    OBJECTSTORE_BYTES.labels("in").inc(size)
    await publish(ctx, meta.ObjectInfo(row.name, key, blob, size, md5, content_type, metadata,
                                       public, time.time()))
    return web.Response(status=200, headers={"ETag": f'"{md5}"'})


async def readable_object(ctx: S3Request) -> meta.ObjectInfo:
    """The object if the requester may read it (bucket access, or a public-read object)."""
    assert ctx.bucket is not None
    bucket = await meta.get_bucket(ctx.db, ctx.bucket)
    if bucket is None:
        raise S3Error("NoSuchBucket", BucketName=ctx.bucket)
    info = await meta.get_object(ctx.db, ctx.bucket, ctx.object_key())
    if not (ctx.owns(bucket) or bucket.public_read or (info is not None and info.public_read)):
        raise S3Error("AccessDenied")
    if info is None:
        raise S3Error("NoSuchKey", Key=ctx.object_key())
    return info


def object_headers(info: meta.ObjectInfo) -> dict[str, str]:
    headers = {"ETag": f'"{info.etag}"', "Last-Modified": xmlviews.http_date(info.last_modified),
               "Content-Type": info.content_type, "Accept-Ranges": "bytes"}
    headers.update(info.metadata)
    return headers


def check_conditions(ctx: S3Request, info: meta.ObjectInfo) -> None:
    """If-Match / If-None-Match / If-(Un)Modified-Since, in RFC 7232's order."""
    headers = ctx.request.headers
    etag = f'"{info.etag}"'
    modified = int(info.last_modified)

    def since(name: str) -> int | None:
        try:
            return int(parsedate_to_datetime(headers[name]).timestamp()) if name in headers else None
        except (TypeError, ValueError):
            return None

    if "If-Match" in headers:
        if etag not in [t.strip() for t in headers["If-Match"].split(",")] and headers["If-Match"] != "*":
            raise S3Error("PreconditionFailed", Condition="If-Match")
    elif (moment := since("If-Unmodified-Since")) is not None and modified > moment:
        raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
    if "If-None-Match" in headers:
        if etag in [t.strip() for t in headers["If-None-Match"].split(",")] or \
                headers["If-None-Match"] == "*":
            raise S3Error("NotModified")
    elif (moment := since("If-Modified-Since")) is not None and modified <= moment:
        raise S3Error("NotModified")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for one `bytes=` range; None to send the whole object."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[6:].strip().partition("-")
    try:
        if not first_text:  # suffix: the last N bytes
            count = int(last_text)
            if count <= 0 or size == 0:
                raise S3Error("InvalidRange", ActualObjectSize=str(size))
            return max(0, size - count), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        raise S3Error("InvalidRange", ActualObjectSize=str(size))
    return first, min(last, size - 1)


async def _open(ctx: S3Request, info: meta.ObjectInfo, offset: int,
                length: int) -> tuple[meta.ObjectInfo, ObjectReader]:
    try:
        return info, await ctx.store.open_read(info.bucket, info.blob, offset, length)
    except ObjectNotFound:
        # Overwritten or deleted between the row and the open: S3 serves what is there now.
        raise S3Error("NoSuchKey", "The object changed while it was being read; retry.") from None


async def get_object(ctx: S3Request, head: bool = False) -> web.StreamResponse:
    info = await readable_object(ctx)
    check_conditions(ctx, info)
    headers = object_headers(info)
    for param, header in RESPONSE_OVERRIDES.items():
        if param in ctx.request.query:
            headers[header] = ctx.request.query[param]
    status, first, length = 200, 0, info.size
    wanted = parse_range(ctx.request.headers.get("Range"), info.size)
    if wanted is not None:
        status, first, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{info.size}"
    if head:
        headers["Content-Length"] = str(length)
        return web.Response(status=status, headers=headers)
    info, reader = await _open(ctx, info, first, length)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    async with reader:
        await response.prepare(ctx.request)
        async for chunk in reader:
            await response.write(chunk)
            OBJECTSTORE_BYTES.labels("out").inc(len(chunk))
    await response.write_eof()
    return response


async def delete_object(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    blob = await meta.delete_object(ctx.db, row.name, ctx.object_key())
    await remove_blobs(ctx, row.name, [blob])
    return web.Response(status=204)


async def copy_source(ctx: S3Request) -> meta.ObjectInfo:
    """The object named by x-amz-copy-source (`/bucket/key` or `bucket/key`, URL-encoded)."""
    source = unquote(ctx.request.headers["x-amz-copy-source"].partition("?")[0]).lstrip("/")
    bucket_name, _, key = source.partition("/")
    if not bucket_name or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key")
    bucket = await meta.get_bucket(ctx.db, bucket_name)
    if bucket is None:
        raise S3Error("NoSuchBucket", BucketName=bucket_name)
    info = await meta.get_object(ctx.db, bucket_name, key)
    if not (ctx.owns(bucket) or bucket.public_read or (info and info.public_read)):
        raise S3Error("AccessDenied")
    if info is None:
        raise S3Error("NoSuchKey", Key=key)
    return info


async def copy_object(ctx: S3Request, row: Bucket, key: str) -> web.Response:
    source = await copy_source(ctx)
    replace = ctx.request.headers.get("x-amz-metadata-directive", "COPY") == "REPLACE"
    content_type = (ctx.request.headers.get("Content-Type", DEFAULT_TYPE) if replace
                    else source.content_type)
    metadata = request_metadata(ctx) if replace else dict(source.metadata)
    _, reader = await _open(ctx, source, 0, source.size)
    async with reader:
        blob, size, md5 = await store_stream(ctx, row.name, reader, key=key)
    info = meta.ObjectInfo(row.name, key, blob, size, md5, content_type, metadata,
                           public_from_acl_header(ctx), time.time())
    await publish(ctx, info)
    return xml_response(xmlviews.copy_result(info.etag, info.last_modified))


async def get_object_acl(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    info = await meta.get_object(ctx.db, row.name, ctx.object_key())
    if info is None:
        raise S3Error("NoSuchKey", Key=ctx.object_key())
    return xml_response(xmlviews.acl(row.project_id, info.public_read))


async def put_object_acl(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    info = await meta.get_object(ctx.db, row.name, ctx.object_key())
    if info is None:
        raise S3Error("NoSuchKey", Key=ctx.object_key())
    await meta.set_object_public(ctx.db, row.name, info.key, public_from_acl_header(ctx))
    return web.Response(status=200)
