"""Who sent an S3 request: SigV4 (header or presigned), SigV2 (header or query), or nobody.

Secrets are the EC2 credentials of the Identity API. The order of the checks follows S3: an
unknown key is InvalidAccessKeyId, then a request outside the time window is refused, then the
signature must match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web

from cloudd.awsauth import sigv2, sigv4
from cloudd.db import Executor
from cloudd.identity.credentials import credential_refusal, lookup_ec2_credential
from cloudd.identity.records import CredentialGrant
from cloudd.objectstore.errors import S3Error

MAX_SKEW = 15 * 60  # seconds, as S3 allows
MAX_PRESIGNED_EXPIRY = 7 * 24 * 3600


@dataclass
class Principal:
    """An authenticated requester. `sigv4`/`signing_key` let the body reader check chunk
    signatures; `payload_hash` is the signed x-amz-content-sha256 (None for SigV2)."""

    access: str
    project_id: str
    user_id: str
    roles: list[str] = field(default_factory=list)
    sigv4: sigv4.SigV4Params | None = None
    signing_key: bytes | None = None
    payload_hash: str | None = None

    @property
    def may_write(self) -> bool:
        """Nova's PROJECT_MEMBER: a reader only reads (admin implies member)."""
        return "member" in self.roles


def split_raw(request: web.Request) -> tuple[str, str]:
    path, _, query = request.raw_path.partition("?")
    return path, query


async def _credential(db: Executor, access: str) -> CredentialGrant:
    cred = await lookup_ec2_credential(db, access)
    if cred is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access)
    return cred


def _principal(cred: CredentialGrant, **signing: Any) -> Principal:
    """The requester once its signature verified (only then is a refusal worth explaining)."""
    if refusal := credential_refusal(cred):
        raise S3Error("AccessDenied", refusal)
    return Principal(cred.access, cred.project_id, cred.user_id, list(cred.roles), **signing)


def _check_skew(moment: datetime, now: float) -> None:
    if abs(moment.timestamp() - now) > MAX_SKEW:
        raise S3Error("RequestTimeTooSkewed",
                      RequestTime=moment.strftime("%Y%m%dT%H%M%SZ"),
                      ServerTime=datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ"))


def _amz_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise S3Error("AccessDenied", f"Invalid date {value!r}") from None


async def _sigv4(request: web.Request, db: Executor, params: sigv4.SigV4Params,
                 now: float, regions: tuple[str, ...]) -> Principal:
    cred = await _credential(db, params.access)
    moment = _amz_time(params.amz_date)
    sigv4.check_scope(params, regions, "s3")
    if params.presigned:
        if not 0 < (params.expires or 0) <= MAX_PRESIGNED_EXPIRY:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be 1..604800")
        if moment.timestamp() - now > MAX_SKEW:
            _check_skew(moment, now)
        if now > moment.timestamp() + (params.expires or 0):
            raise S3Error("AccessDenied", "Request has expired")
        payload_hash = request.query.get("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
    else:
        _check_skew(moment, now)
        payload_hash = request.headers.get("x-amz-content-sha256", "")
        if not payload_hash:
            raise S3Error("InvalidRequest",
                          "Missing required header for this request: x-amz-content-sha256")
    sigv4.check_payload_hash(payload_hash)
    path, query = split_raw(request)
    key = sigv4.verify(params, cred.secret, request.method, path, query, request.headers,
                       payload_hash)
    return _principal(cred, sigv4=params, signing_key=key, payload_hash=payload_hash)


async def _sigv2(request: web.Request, db: Executor, access: str, signature: str,
                 date_value: str, bucket_in_host: str | None) -> Principal:
    cred = await _credential(db, access)
    path, query = split_raw(request)
    sigv2.verify(cred.secret, signature, [
        sigv2.string_to_sign(request.method, request.headers, date_value,
                             sigv2.canonical_resource(candidate, query, bucket_in_host))
        for candidate in sigv2.candidate_paths(path)])
    return _principal(cred)


async def _sigv2_header(request: web.Request, db: Executor, header: str, now: float,
                        bucket_in_host: str | None) -> Principal:
    access, sep, signature = header[4:].strip().rpartition(":")
    if not sep:
        raise S3Error("InvalidArgument", "Malformed AWS authorization header")
    await _credential(db, access)  # an unknown key is reported before the time window
    amz_date = request.headers.get("x-amz-date", "")
    date_header = amz_date or request.headers.get("Date", "")
    try:
        moment = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date "
                      "header") from None
    _check_skew(moment, now)
    # With x-amz-date present the Date line is empty: x-amz-date is signed among the amz headers.
    return await _sigv2(request, db, access, signature, "" if amz_date else date_header,
                        bucket_in_host)


async def _sigv2_query(request: web.Request, db: Executor, now: float,
                       bucket_in_host: str | None) -> Principal:
    query = request.query
    access = query["AWSAccessKeyId"]
    await _credential(db, access)
    try:
        expires = int(query.get("Expires", ""))
    except ValueError:
        raise S3Error("AccessDenied", "Query-string authentication requires Expires") from None
    if now > expires:
        raise S3Error("AccessDenied", "Request has expired")
    return await _sigv2(request, db, access, query.get("Signature", ""), str(expires),
                        bucket_in_host)


async def authenticate(request: web.Request, db: Executor, bucket_in_host: str | None = None,
                       regions: tuple[str, ...] = ("us-east-1",)) -> Principal | None:
    """The requester, or None for an anonymous request. Raises S3Error when a signature is
    present but wrong, stale, scoped to another day, region or service, or made with an
    unknown key or one whose user may no longer use it."""
    now = time.time()
    header = request.headers.get("Authorization", "")
    if header.startswith(sigv4.ALGORITHM):
        return await _sigv4(request, db, sigv4.parse_authorization(header, request.headers), now,
                            regions)
    if header.startswith("AWS "):
        return await _sigv2_header(request, db, header, now, bucket_in_host)
    if header:
        raise S3Error("InvalidArgument", "Unsupported Authorization Type")
    query = request.query
    if "X-Amz-Algorithm" in query or "X-Amz-Signature" in query:
        return await _sigv4(request, db, sigv4.parse_presigned(dict(query)), now, regions)
    if "AWSAccessKeyId" in query and "Signature" in query:
        return await _sigv2_query(request, db, now, bucket_in_host)
    return None
