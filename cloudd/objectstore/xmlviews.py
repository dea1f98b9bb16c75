"""S3 response documents. Success bodies carry S3's namespace; errors are in errors.py."""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import formatdate
from urllib.parse import quote
from xml.sax.saxutils import escape

from cloudd.objectstore.meta import Bucket, Listing, ObjectInfo, Part, Upload

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)  # RFC 1123: Mon, 23 Nov 2026 19:51:23 GMT


def element(name: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, body: str) -> bytes:
    return f'{HEADER}<{root} xmlns="{NS}">{body}</{root}>'.encode()


def owner(project_id: str) -> str:
    return f"<Owner>{element('ID', project_id)}{element('DisplayName', project_id)}</Owner>"


def list_buckets(project_id: str, buckets: Iterable[Bucket]) -> bytes:
    items = "".join(
        f"<Bucket>{element('Name', b.name)}{element('CreationDate', iso8601(b.created_at))}</Bucket>"
        for b in buckets)
    return document("ListAllMyBucketsResult", f"{owner(project_id)}<Buckets>{items}</Buckets>")


def _encode(value: str, url_encoding: bool) -> str:
    return quote(value, safe="/") if url_encoding else value


def _contents(item: ObjectInfo, url_encoding: bool, project_id: str, with_owner: bool) -> str:
    return ("<Contents>" + element("Key", _encode(item.key, url_encoding))
            + element("LastModified", iso8601(item.last_modified))
            + element("ETag", f'"{item.etag}"') + element("Size", item.size)
            + (owner(project_id) if with_owner else "")
            + element("StorageClass", "STANDARD") + "</Contents>")


def list_objects(bucket: str, project_id: str, listing: Listing, *, prefix: str, delimiter: str,
                 max_keys: int, url_encoding: bool, v2: bool, marker: str = "",
                 start_after: str = "", token: str = "", next_token: str = "",
                 fetch_owner: bool = False) -> bytes:
    enc = url_encoding
    parts = [element("Name", bucket), element("Prefix", _encode(prefix, enc))]
    if v2:
        parts.append(element("KeyCount", len(listing.contents) + len(listing.common_prefixes)))
        if token:
            parts.append(element("ContinuationToken", token))
        if start_after:
            parts.append(element("StartAfter", _encode(start_after, enc)))
        if listing.truncated:
            parts.append(element("NextContinuationToken", next_token))
    else:
        parts.append(element("Marker", _encode(marker, enc)))
        if listing.truncated and delimiter and listing.next_marker is not None:
            parts.append(element("NextMarker", _encode(listing.next_marker, enc)))
    parts.append(element("MaxKeys", max_keys))
    if delimiter:
        parts.append(element("Delimiter", _encode(delimiter, enc)))
    if enc:
        parts.append(element("EncodingType", "url"))
    parts.append(element("IsTruncated", listing.truncated))
    with_owner = fetch_owner or not v2
    parts += [_contents(item, enc, project_id, with_owner) for item in listing.contents]
    parts += [f"<CommonPrefixes>{element('Prefix', _encode(cp, enc))}</CommonPrefixes>"
              for cp in listing.common_prefixes]
    return document("ListBucketResult", "".join(parts))


def initiate_upload(bucket: str, key: str, upload_id: str) -> bytes:
    return document("InitiateMultipartUploadResult",
                    element("Bucket", bucket) + element("Key", key) + element("UploadId", upload_id))


def complete_upload(location: str, bucket: str, key: str, etag: str) -> bytes:
    return document("CompleteMultipartUploadResult",
                    element("Location", location) + element("Bucket", bucket)
                    + element("Key", key) + element("ETag", f'"{etag}"'))


def list_parts(bucket: str, key: str, upload: Upload, parts: list[Part], marker: int, max_parts: int,
               truncated: bool) -> bytes:
    body = (element("Bucket", bucket) + element("Key", key) + element("UploadId", upload.upload_id)
            + f"<Initiator>{element('ID', upload.project_id)}"
              f"{element('DisplayName', upload.project_id)}</Initiator>"
            + owner(upload.project_id) + element("StorageClass", "STANDARD")
            + element("PartNumberMarker", marker)
            + element("NextPartNumberMarker", parts[-1].part_number if parts else marker)
            + element("MaxParts", max_parts) + element("IsTruncated", truncated))
    body += "".join(
        "<Part>" + element("PartNumber", p.part_number)
        + element("LastModified", iso8601(p.last_modified))
        + element("ETag", f'"{p.etag}"') + element("Size", p.size) + "</Part>" for p in parts)
    return document("ListPartsResult", body)


def list_uploads(bucket: str, uploads: list[Upload]) -> bytes:
    body = (element("Bucket", bucket) + element("KeyMarker", "") + element("UploadIdMarker", "")
            + element("MaxUploads", 1000) + element("IsTruncated", False))
    body += "".join(
        "<Upload>" + element("Key", u.object_key) + element("UploadId", u.upload_id)
        + f"<Initiator>{element('ID', u.project_id)}{element('DisplayName', u.project_id)}"
          "</Initiator>" + owner(u.project_id) + element("StorageClass", "STANDARD")
        + element("Initiated", iso8601(u.created_at)) + "</Upload>" for u in uploads)
    return document("ListMultipartUploadsResult", body)


def copy_result(etag: str, modified: float, part: bool = False) -> bytes:
    root = "CopyPartResult" if part else "CopyObjectResult"
    return document(root, element("LastModified", iso8601(modified)) + element("ETag", f'"{etag}"'))


def delete_result(deleted: list[str], errors: list[tuple[str, str, str]], quiet: bool) -> bytes:
    body = "" if quiet else "".join(f"<Deleted>{element('Key', key)}</Deleted>" for key in deleted)
    body += "".join(
        f"<Error>{element('Key', key)}{element('Code', code)}{element('Message', message)}</Error>"
        for key, code, message in errors)
    return document("DeleteResult", body)


def location(region: str) -> bytes:
    return document("LocationConstraint", escape(region))


def acl(project_id: str, public_read: bool) -> bytes:
    grantee = ('<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
               'xsi:type="CanonicalUser">' + element("ID", project_id)
               + element("DisplayName", project_id) + "</Grantee>")
    grants = f"<Grant>{grantee}{element('Permission', 'FULL_CONTROL')}</Grant>"
    if public_read:
        grants += ('<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                   'xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>'
                   f"</Grantee>{element('Permission', 'READ')}</Grant>")
    return document("AccessControlPolicy", owner(project_id) + f"<AccessControlList>{grants}"
                    "</AccessControlList>")
