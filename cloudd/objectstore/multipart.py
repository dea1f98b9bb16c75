"""Multipart uploads: initiate, upload part (in any order, concurrently), list parts, complete
(validated, with the md5-of-md5s ETag), abort.

Each part is its own blob; completion streams the parts in order into the object's blob, so the
object appears at once, whole, or not at all.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import web

from cloudd.metrics import OBJECTSTORE_BYTES
from cloudd.objectstore import meta, xmlviews
from cloudd.objectstore.body import request_body
from cloudd.objectstore.buckets import public_from_acl_header, remove_blobs, xml_response
from cloudd.objectstore.context import S3Request, read_xml
from cloudd.objectstore.errors import S3Error
from cloudd.objectstore.meta import Bucket, Part, Upload
from cloudd.objectstore.objects import (
    DEFAULT_TYPE,
    copy_source,
    publish,
    request_metadata,
    store_stream,
)
from cloudd.objectstore.storage import ObjectReader
from cloudd.web.inputs import parse_count

MIN_PART_SIZE = 5 * 1024**2  # every part but the last, as S3 requires
MAX_PART_NUMBER = 10000


async def _upload(ctx: S3Request, row: Bucket) -> Upload:
    upload_id = ctx.request.query.get("uploadId", "")
    upload = await meta.get_upload(ctx.db, upload_id, row.name, ctx.object_key())
    if upload is None:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    return upload


async def initiate(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    assert ctx.principal is not None  # write access implies an owner
    upload_id = uuid.uuid4().hex
    await meta.create_upload(ctx.db, upload_id, row.name, ctx.object_key(), ctx.principal.project_id,
                             ctx.request.headers.get("Content-Type", DEFAULT_TYPE),
                             request_metadata(ctx), public_from_acl_header(ctx))
    return xml_response(xmlviews.initiate_upload(row.name, ctx.object_key(), upload_id))


def _part_number(ctx: S3Request) -> int:
    number = parse_count(ctx.request.query.get("partNumber", ""), "partNumber")
    if not 1 <= number <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000")
    return number


async def _copy_part_reader(ctx: S3Request) -> ObjectReader:
    source = await copy_source(ctx)
    first, last = 0, source.size - 1
    if wanted := ctx.request.headers.get("x-amz-copy-source-range"):
        try:
            first_text, _, last_text = wanted.removeprefix("bytes=").partition("-")
            first, last = int(first_text), int(last_text)
        except ValueError:
            raise S3Error("InvalidArgument", "Invalid x-amz-copy-source-range") from None
        if not 0 <= first <= last < source.size:
            raise S3Error("InvalidRange", ActualObjectSize=str(source.size))
    return await ctx.store.open_read(source.bucket, source.blob, first, last - first + 1)


async def upload_part(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    number = _part_number(ctx)
    upload = await _upload(ctx, row)
    copying = "x-amz-copy-source" in ctx.request.headers
    if copying:
        async with await _copy_part_reader(ctx) as reader:
            blob, size, md5 = await store_stream(ctx, row.name, reader)
    else:
        blob, size, md5 = await store_stream(ctx, row.name, request_body(ctx.request, ctx.principal))
        OBJECTSTORE_BYTES.labels("in").inc(size)
    replaced = await meta.put_part(ctx.db, upload.upload_id, number, blob, size, md5)
    await remove_blobs(ctx, row.name, [replaced])
    if replaced == blob:  # completed or aborted while this part was uploading
        raise S3Error("NoSuchUpload", UploadId=upload.upload_id)
    if copying:
        return xml_response(xmlviews.copy_result(md5, time.time(), part=True))
    return web.Response(status=200, headers={"ETag": f'"{md5}"'})


async def list_parts(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    upload = await _upload(ctx, row)
    query = ctx.request.query
    marker_text, max_text = query.get("part-number-marker", "0"), query.get("max-parts", "1000")
    marker = parse_count(marker_text, "part-number-marker")
    max_parts = min(parse_count(max_text, "max-parts"), 1000)
    parts = [p for p in await meta.list_parts(ctx.db, upload.upload_id) if p.part_number > marker]
    return xml_response(xmlviews.list_parts(row.name, ctx.object_key(), upload, parts[:max_parts],
                                            marker, max_parts, len(parts) > max_parts))


def _requested_parts(root: ET.Element) -> list[tuple[int, str]]:
    wanted: list[tuple[int, str]] = []
    for part in root.findall("Part"):
        number_text = (part.findtext("PartNumber") or "").strip()
        if not (number_text.isascii() and number_text.isdigit()) or len(number_text) > 5:
            raise S3Error("MalformedXML")
        wanted.append((int(number_text), (part.findtext("ETag") or "").strip().strip('"')))
    if not wanted:
        raise S3Error("MalformedXML", "You must specify at least one part")
    numbers = [number for number, _ in wanted]
    if numbers != sorted(set(numbers)):
        raise S3Error("InvalidPartOrder")
    return wanted


def _chosen_parts(wanted: list[tuple[int, str]], stored: list[Part]) -> list[Part]:
    by_number = {part.part_number: part for part in stored}
    chosen = []
    for index, (number, etag) in enumerate(wanted):
        part = by_number.get(number)
        if part is None or part.etag != etag:
            raise S3Error("InvalidPart", PartNumber=str(number), ETag=etag)
        if index < len(wanted) - 1 and part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", PartNumber=str(number),
                          ProposedSize=str(part.size), MinSizeAllowed=str(MIN_PART_SIZE))
        chosen.append(part)
    return chosen


async def _concatenate(ctx: S3Request, bucket: str, parts: list[Part]) -> AsyncIterator[bytes]:
    for part in parts:
        async with await ctx.store.open_read(bucket, part.blob) as reader:
            async for chunk in reader:
                yield chunk


async def complete(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    upload = await _upload(ctx, row)
    wanted = _requested_parts(await read_xml(ctx.request))
    parts = _chosen_parts(wanted, await meta.list_parts(ctx.db, upload.upload_id))
    blob, size, _ = await store_stream(ctx, row.name, _concatenate(ctx, row.name, parts),
                                       key=upload.object_key, metered=False)
    digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts), usedforsecurity=False)
    etag = f"{digest.hexdigest()}-{len(parts)}"
    info = meta.ObjectInfo(row.name, upload.object_key, blob, size, etag,
                           upload.content_type, upload.metadata,
                           upload.public_read, time.time())
    await publish(ctx, info)
    await remove_blobs(ctx, row.name, list(await meta.finish_upload(ctx.db, upload.upload_id)))
    location = f"{ctx.request.scheme}://{ctx.request.host}/{row.name}/{quote(info.key)}"
    return xml_response(xmlviews.complete_upload(location, row.name, info.key, etag))


async def abort(ctx: S3Request) -> web.Response:
    row = await ctx.bucket_row(write=True)
    upload = await _upload(ctx, row)
    await remove_blobs(ctx, row.name, list(await meta.finish_upload(ctx.db, upload.upload_id)))
    return web.Response(status=204)
