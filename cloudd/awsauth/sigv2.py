"""AWS Signature Version 2 for S3 (`Authorization: AWS AK:sig`, or the AWSAccessKeyId/Expires/
Signature query), what boto3 sends with `Config(signature_version="s3")`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from cloudd.awsauth.errors import SignatureError

# Query parameters that are part of the signed resource (everything else is not).
SUB_RESOURCES = frozenset({
    "accelerate", "analytics", "defaultObjectAcl", "inventory", "metrics", "object-lock",
    "replication", "select", "select-type", "storageClass", "acl", "cors", "delete", "lifecycle",
    "location", "logging", "notification", "partNumber", "policy", "requestPayment", "restore",
    "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
    "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires",
})


def canonical_resource(raw_path: str, raw_query: str, bucket_in_host: str | None) -> str:
    resource = raw_path or "/"
    if bucket_in_host:  # virtual-host style: the bucket is part of the resource all the same
        resource = "/" + bucket_in_host + resource
    subs = []
    for item in raw_query.split("&") if raw_query else []:
        name, sep, value = item.partition("=")
        name = unquote(name)
        if name in SUB_RESOURCES:
            subs.append((name, unquote(value) if sep else None))
    if subs:
        subs.sort()
        resource += "?" + "&".join(name if value is None else f"{name}={value}" for name, value in subs)
    return resource


def string_to_sign(method: str, headers: CIMultiDictProxy[str], date_value: str,
                   resource: str) -> str:
    amz = sorted({name.lower() for name in headers if name.lower().startswith("x-amz-")})
    amz_lines = "".join(
        f"{name}:" + ",".join(value.strip() for value in headers.getall(name)) + "\n" for name in amz)
    return (f"{method}\n{headers.get('Content-MD5', '').strip()}\n"
            f"{headers.get('Content-Type', '').strip()}\n{date_value}\n{amz_lines}{resource}")


def candidate_paths(raw_path: str) -> list[str]:
    """botocore signs a bucket-level request as `/bucket/` even when it sends `/bucket`."""
    path = raw_path or "/"
    if path.count("/") == 1 and path != "/":
        return [path, path + "/"]
    return [path]


def verify(secret: str, signature: str, strings_to_sign: list[str]) -> None:
    for to_sign in strings_to_sign:
        for digest in (hashlib.sha1, hashlib.sha256):
            mac = hmac.new(secret.encode(), to_sign.encode(), digest).digest()
            if hmac.compare_digest(base64.b64encode(mac).decode(), signature):
                return
    raise SignatureError("SignatureDoesNotMatch")
