"""AWS Signature Version 4 for S3: the header form, the presigned-URL form and chunk signatures.

The canonical request is rebuilt from the request as received. botocore signs S3 paths and
query strings exactly as it sends them (already percent-encoded, not re-normalized), while
other clients re-encode; both spellings are tried so either kind of client verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from multidict import CIMultiDictProxy

from cloudd.awsauth.errors import SignatureError

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass
class SigV4Params:
    access: str
    date: str  # yyyymmdd of the credential scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str  # yyyymmddThhmmssZ
    presigned: bool
    expires: int | None = None

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _split_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SignatureError("AuthorizationHeaderMalformed", f"Malformed credential scope: {credential}")
    return parts[0], parts[1], parts[2], parts[3]


def parse_authorization(header: str, headers: CIMultiDictProxy[str]) -> SigV4Params:
    """`AWS4-HMAC-SHA256 Credential=AK/date/region/s3/aws4_request, SignedHeaders=a;b, Signature=hex`"""
    fields: dict[str, str] = {}
    for item in header[len(ALGORITHM):].split(","):
        name, _, value = item.strip().partition("=")
        fields[name] = value
    try:
        access, date, region, service = _split_credential(fields["Credential"])
        signed = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
    except KeyError as exc:
        raise SignatureError("InvalidArgument", f"Authorization header is missing {exc}") from None
    amz_date = headers.get("x-amz-date", "")
    if not amz_date:
        raise SignatureError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    return SigV4Params(access, date, region, service, signed, signature, amz_date, presigned=False)


def parse_presigned(query: dict[str, str]) -> SigV4Params:
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise SignatureError("InvalidArgument", "Only AWS4-HMAC-SHA256 is supported as X-Amz-Algorithm")
    try:
        access, date, region, service = _split_credential(query["X-Amz-Credential"])
        expires = int(query.get("X-Amz-Expires", "604800"))
        return SigV4Params(access, date, region, service, query["X-Amz-SignedHeaders"].split(";"),
                           query["X-Amz-Signature"], query["X-Amz-Date"], True, expires)
    except (KeyError, ValueError) as exc:
        raise SignatureError("AuthorizationQueryParametersError",
                      f"Query-string authentication is missing or has a bad {exc}") from None


# The x-amz-content-sha256 values other than a hex digest that this store implements; any other
# value would leave the body unverified, so it is refused (as S3 refuses it).
PAYLOAD_SPECIAL = frozenset({
    "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
})
_HEX = frozenset("0123456789abcdef")


def check_payload_hash(value: str) -> None:
    """A lowercase hex SHA-256 (the body is then verified against it) or a special value."""
    if value in PAYLOAD_SPECIAL or (len(value) == 64 and set(value) <= _HEX):
        return
    raise SignatureError("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), STREAMING-UNSIGNED-PAYLOAD-"
                  "TRAILER or the hex SHA-256 of the payload", ArgumentName="x-amz-content-sha256")


def check_scope(params: SigV4Params, regions: tuple[str, ...], service: str) -> None:
    """What S3 checks before the signature: the credential scope is for this day (the date of
    X-Amz-Date, so a signing key stays good for one day only), this region and this service,
    and the Host header is signed (so a request cannot be replayed against another host)."""
    code = "AuthorizationQueryParametersError" if params.presigned else \
        "AuthorizationHeaderMalformed"
    if params.date != params.amz_date[:8]:
        raise SignatureError(code, f"Invalid credential date \"{params.date}\". This date is not the "
                      f"same as X-Amz-Date: \"{params.amz_date[:8]}\".")
    if params.region not in regions:
        raise SignatureError(code, f"The authorization header is malformed; the region "
                      f"'{params.region}' is wrong; expecting '{regions[0]}'", Region=regions[0])
    if params.service != service:
        raise SignatureError(code, f"The authorization header is malformed; incorrect service "
                      f"'{params.service}'. This endpoint belongs to '{service}'.")
    if "host" not in params.signed_headers:
        raise SignatureError(code, "The host header must be among the signed headers.")


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(key: bytes, string_to_sign: str) -> str:
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _query_pairs(raw_query: str, drop: str | None) -> list[tuple[str, str]]:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        if unquote(name) != drop:
            pairs.append((name, value))
    return pairs


def _canonical_queries(raw_query: str, drop: str | None) -> set[str]:
    """The query as the client sent it (sorted), and re-encoded the way the spec says."""
    pairs = _query_pairs(raw_query, drop)
    as_sent = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    encoded = sorted((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")) for k, v in pairs)
    return {as_sent, "&".join(f"{k}={v}" for k, v in encoded)}


def _canonical_paths(raw_path: str) -> set[str]:
    return {raw_path or "/", quote(unquote(raw_path), safe="/~") or "/"}


def canonical_headers(headers: CIMultiDictProxy[str], signed: Iterable[str]) -> str:
    lines = []
    for name in signed:
        values = headers.getall(name, [])
        lines.append(f"{name}:" + ",".join(" ".join(value.split()) for value in values))
    return "\n".join(lines) + "\n"


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def verify(params: SigV4Params, secret: str, method: str, raw_path: str, raw_query: str,
           headers: CIMultiDictProxy[str], payload_hash: str) -> bytes:
    """Check the request's signature; return the signing key (chunk signatures need it)."""
    key = signing_key(secret, params.date, params.region, params.service)
    header_block = canonical_headers(headers, params.signed_headers)
    signed = ";".join(params.signed_headers)
    drop = "X-Amz-Signature" if params.presigned else None
    for path in _canonical_paths(raw_path):
        for query in _canonical_queries(raw_query, drop):
            canonical = "\n".join((method, path, query, header_block, signed, payload_hash))
            expected = sign(key, string_to_sign(params.amz_date, params.scope, canonical))
            if hmac.compare_digest(expected, params.signature):
                return key
    raise SignatureError("SignatureDoesNotMatch")


def chunk_string_to_sign(amz_date: str, scope: str, previous: str, chunk_sha256: str) -> str:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD: each chunk chains on the previous signature."""
    return (f"{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n"
            f"{chunk_sha256}")


def trailer_string_to_sign(amz_date: str, scope: str, previous: str, trailer: bytes) -> str:
    return (f"{ALGORITHM}-TRAILER\n{amz_date}\n{scope}\n{previous}\n"
            f"{hashlib.sha256(trailer).hexdigest()}")
