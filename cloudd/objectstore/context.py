"""One S3 request as the handlers see it, and the ownership rules every handler applies."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from cloudd.db import Database
from cloudd.objectstore import meta
from cloudd.objectstore.auth import Principal
from cloudd.objectstore.errors import S3Error
from cloudd.objectstore.meta import Bucket
from cloudd.objectstore.storage import ObjectStore

# S3's bucket naming rules (DNS-compatible), which also keep names safe as directory names.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
MAX_XML_BODY = 2 * 1024 * 1024  # a 1000-key multi-delete or a 10000-part completion fits


@dataclass
class S3Request:
    request: web.Request
    db: Database
    store: ObjectStore
    principal: Principal | None
    bucket: str | None
    key: str | None
    request_id: str

    def has(self, name: str) -> bool:
        return name in self.request.query

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise S3Error("AccessDenied", "Anonymous access is not allowed here.")
        return self.principal

    def owns(self, bucket: Bucket) -> bool:
        return self.principal is not None and self.principal.project_id == bucket.project_id

    async def bucket_row(self, *, write: bool) -> Bucket:
        """The request's bucket if the requester may use it: its project may do anything;
        anyone (even anonymous) may read a public-read bucket. Others get AccessDenied."""
        assert self.bucket is not None
        row = await meta.get_bucket(self.db, self.bucket)
        if row is None:
            raise S3Error("NoSuchBucket", BucketName=self.bucket)
        if self.owns(row) or (not write and row.public_read):
            return row
        raise S3Error("AccessDenied")

    def object_key(self) -> str:
        assert self.key is not None
        if len(self.key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", "Your key is too long")
        return self.key


async def read_xml(request: web.Request) -> ET.Element:
    """A small XML request body, parsed with the namespace stripped from every tag."""
    body = b""
    while piece := await request.content.readany():
        body += piece
        if len(body) > MAX_XML_BODY:
            raise S3Error("MalformedXML", "The XML body is too large.")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:  # no entity expansion from clients
        raise S3Error("MalformedXML")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error("MalformedXML") from None
    for node in root.iter():
        node.tag = node.tag.rpartition("}")[2]
    return root


def parse_location(request: web.Request,
                   virtual_host_domain: str) -> tuple[str | None, str | None, bool]:
    """(bucket, key, bucket came from the Host name): path-style or virtual-host style."""
    raw_path = request.raw_path.partition("?")[0]
    path = unquote(raw_path)
    host = request.headers.get("Host", "").rsplit(":", 1)[0].lower()
    suffix = "." + virtual_host_domain.lower() if virtual_host_domain else ""
    if suffix and host.endswith(suffix) and len(host) > len(suffix):
        bucket: str | None = host[: -len(suffix)]
        return bucket, path[1:] or None, True
    name, _, key_part = path.lstrip("/").partition("/")
    return (name or None), (key_part or None), False
