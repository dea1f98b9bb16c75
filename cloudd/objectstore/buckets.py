"""Service- and bucket-level S3 operations: list buckets, create/head/delete, list objects,
multi-object delete, ACL and location."""

from __future__ import annotations

import base64
import binascii
import logging

from aiohttp import web

from cloudd.objectstore import meta, xmlviews
from cloudd.objectstore.context import BUCKET_NAME, S3Request, read_xml
from cloudd.objectstore.errors import S3Error
from cloudd.objectstore.storage import StorageError
from cloudd.web.inputs import parse_count

LOG = logging.getLogger(__name__)
MAX_KEYS = 1000
MAX_DELETE_KEYS = 1000


def xml_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/xml")


def public_from_acl_header(ctx: S3Request) -> bool:
    acl = ctx.request.headers.get("x-amz-acl", "private")
    if acl not in ("private", "public-read", "public-read-write", "authenticated-read",
                   "bucket-owner-read", "bucket-owner-full-control"):
        raise S3Error("InvalidArgument", f"Unsupported canned ACL {acl!r}")
    return acl in ("public-read", "public-read-write")


async def remove_blobs(ctx: S3Request, bucket: str, blobs: list[str | None]) -> None:
    """Delete files no row refers to any more; a failure only leaves garbage for start-up."""
    for blob in blobs:
        if blob:
            try:
                await ctx.store.delete(bucket, blob)
            except StorageError:
                LOG.warning("could not delete blob %s of bucket %s", blob, bucket, exc_info=True)


async def list_all_buckets(ctx: S3Request) -> web.Response:
    principal = ctx.require_principal()
    rows = await meta.list_buckets(ctx.db, principal.project_id)
    return xml_response(xmlviews.list_buckets(principal.project_id, rows))


async def create_bucket(ctx: S3Request) -> web.Response:
    principal = ctx.require_principal()
    assert ctx.bucket is not None
    if not BUCKET_NAME.match(ctx.bucket) or ".." in ctx.bucket:
        raise S3Error("InvalidBucketName", BucketName=ctx.bucket)
    public = public_from_acl_header(ctx)
    if ctx.request.can_read_body:
        await read_xml(ctx.request)  # CreateBucketConfiguration: the location is ignored
    if not await meta.create_bucket(ctx.db, ctx.bucket, principal.project_id, public):
        existing = await meta.get_bucket(ctx.db, ctx.bucket)
        if existing is not None and existing.project_id == principal.project_id:
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=ctx.bucket)
        raise S3Error("BucketAlreadyExists", BucketName=ctx.bucket)
    await ctx.store.create_bucket(ctx.bucket)
    return web.Response(status=200, headers={"Location": "/" + ctx.bucket})


async def head_bucket(ctx: S3Request) -> web.Response:
    await ctx.bucket_row(write=False)
    return web.Response(status=200, headers={"x-amz-bucket-region": "us-east-1"})


async def delete_bucket(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    if not await meta.delete_bucket_if_empty(ctx.db, row.name):
        raise S3Error("BucketNotEmpty", BucketName=row.name)
    try:
        for leftover in await ctx.store.list(row.name):  # crash leftovers: unreferenced
            await ctx.store.delete(row.name, leftover.key)
        await ctx.store.delete_bucket(row.name)
    except StorageError:
        LOG.warning("bucket %s is deleted but its directory is not", row.name, exc_info=True)
    return web.Response(status=204)


def _max_keys(ctx: S3Request) -> int:
    return min(parse_count(ctx.request.query.get("max-keys", str(MAX_KEYS)), "max-keys"), MAX_KEYS)


def _token_decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


async def list_objects(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=False)
    query = ctx.request.query
    v2 = query.get("list-type") == "2"
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    encoding = query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
    max_keys = _max_keys(ctx)
    token = query.get("continuation-token", "")
    start_after = query.get("start-after", "")
    marker = query.get("marker", "")
    after = (_token_decode(token) if token else start_after) if v2 else marker
    listing = await meta.list_objects(ctx.db, row.name, prefix, delimiter, after, max_keys)
    next_token = ""
    if listing.truncated and listing.next_marker is not None:
        next_token = base64.urlsafe_b64encode(listing.next_marker.encode()).decode()
    body = xmlviews.list_objects(
        row.name, row.project_id, listing, prefix=prefix, delimiter=delimiter,
        max_keys=max_keys, url_encoding=encoding == "url", v2=v2, marker=marker,
        start_after=start_after, token=token, next_token=next_token,
        fetch_owner=query.get("fetch-owner") == "true")
    return xml_response(body)


async def delete_objects(ctx: S3Request) -> web.Response:
    """POST /bucket?delete: up to 1000 keys; each missing key counts as deleted (as in S3)."""
    row = await ctx.bucket_row(write=True)
    root = await read_xml(ctx.request)
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    keys = [obj.findtext("Key") or "" for obj in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML")
    deleted: list[str] = []
    errors: list[tuple[str, str, str]] = []
    for key in keys:
        if not key:
            errors.append((key, "InvalidArgument", "Empty key"))
            continue
        blob = await meta.delete_object(ctx.db, row.name, key)
        await remove_blobs(ctx, row.name, [blob])
        deleted.append(key)
    return xml_response(xmlviews.delete_result(deleted, errors, quiet))


async def list_uploads(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    uploads = await meta.list_uploads(ctx.db, row.name)
    return xml_response(xmlviews.list_uploads(row.name, uploads))


async def get_location(ctx: S3Request) -> web.Response:
    await ctx.bucket_row(write=True)
    return xml_response(xmlviews.location(""))


async def get_bucket_acl(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    return xml_response(xmlviews.acl(row.project_id, row.public_read))


async def put_bucket_acl(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    await meta.set_bucket_public(ctx.db, row.name, public_from_acl_header(ctx))
    return web.Response(status=200)
