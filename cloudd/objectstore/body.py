"""Request bodies as verified byte streams.

A PUT body arrives either plain (its SHA-256 signed in x-amz-content-sha256, or UNSIGNED-PAYLOAD)
or `aws-chunked` (what boto3 sends over HTTPS): `<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n`
... `0...\\r\\n`, optional trailer lines (`x-amz-checksum-crc32:<b64>`) and `\\r\\n`. Either way
the handler gets the decoded bytes, and every check (payload hash, chunk signatures, Content-MD5,
x-amz-checksum-*, decoded length) runs as the bytes stream past. A failed check raises S3Error
before the stream ends, so the storage layer never commits the object.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from cloudd.awsauth import sigv4
from cloudd.objectstore.auth import Principal
from cloudd.objectstore.errors import S3Error

PIECE = 256 * 1024  # bytes read from the socket at a time
HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_CHUNK_HEADER = 4096


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _checksum_hasher(algorithm: str) -> Any | None:
    """A hasher for an x-amz-checksum-<algorithm>, or None when it is not checked here
    (crc32c and crc64nvme need libraries the standard library does not have)."""
    if algorithm == "crc32":
        return _Crc32()
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    return None


class BodyVerifier:
    """Everything the request promised about its decoded bytes, checked as they stream."""

    def __init__(self, request: web.Request, principal: Principal | None) -> None:
        headers = request.headers
        payload_hash = principal.payload_hash if principal else None
        self.sha256 = hashlib.sha256() if payload_hash and HEX64.match(payload_hash) else None
        self.expected_sha256 = payload_hash
        self.md5_expected = self._md5_header(headers.get("Content-MD5"))
        self.md5 = hashlib.md5() if self.md5_expected is not None else None
        self.checksums: dict[str, tuple[Any, str | None]] = {}
        for name, value in headers.items():
            lname = name.lower()
            if lname.startswith("x-amz-checksum-") and lname not in ("x-amz-checksum-algorithm",
                                                                    "x-amz-checksum-type",
                                                                    "x-amz-checksum-mode"):
                self._expect_checksum(lname, value)
        for trailer in headers.get("x-amz-trailer", "").split(","):
            if trailer.strip().lower().startswith("x-amz-checksum-"):
                self._expect_checksum(trailer.strip().lower(), None)
        self.length = 0

    @staticmethod
    def _md5_header(value: str | None) -> bytes | None:
        if value is None:
            return None
        try:
            digest = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise S3Error("InvalidDigest") from None
        if len(digest) != 16:
            raise S3Error("InvalidDigest")
        return digest

    def _expect_checksum(self, header: str, expected: str | None) -> None:
        hasher = _checksum_hasher(header.removeprefix("x-amz-checksum-"))
        if hasher is not None:
            self.checksums[header] = (hasher, expected)

    def update(self, data: bytes) -> None:
        self.length += len(data)
        for hasher in (self.sha256, self.md5):
            if hasher is not None:
                hasher.update(data)
        for hasher, _ in self.checksums.values():
            hasher.update(data)

    def finish(self, trailers: dict[str, str]) -> None:
        if self.sha256 is not None and self.sha256.hexdigest() != self.expected_sha256:
            raise S3Error("XAmzContentSHA256Mismatch")
        if self.md5 is not None and self.md5.digest() != self.md5_expected:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we "
                          "received.")
        for name, (hasher, expected) in self.checksums.items():
            wanted = expected if expected is not None else trailers.get(name)
            if wanted is None:
                raise S3Error("InvalidRequest", f"The trailer {name} was promised but not sent")
            if base64.b64encode(hasher.digest()).decode() != wanted.strip():
                raise S3Error("BadDigest", f"The {name} you specified did not match the calculated "
                              "checksum.")


def is_aws_chunked(request: web.Request) -> bool:
    encoding = request.headers.get("Content-Encoding", "")
    payload = request.headers.get("x-amz-content-sha256", "")
    return "aws-chunked" in encoding or payload.startswith("STREAMING-")


async def _plain(request: web.Request, verifier: BodyVerifier) -> AsyncIterator[bytes]:
    expected = request.content_length
    while True:
        piece = await request.content.read(PIECE)
        if not piece:
            break
        verifier.update(piece)
        yield piece
    if expected is not None and verifier.length != expected:
        raise S3Error("IncompleteBody")
    verifier.finish({})


class _ChunkSigner:
    """Chains chunk signatures from the seed (the request's own signature)."""

    def __init__(self, principal: Principal) -> None:
        assert principal.sigv4 is not None and principal.signing_key is not None
        self.params = principal.sigv4
        self.key = principal.signing_key
        self.previous = principal.sigv4.signature

    def check_chunk(self, chunk_sha256: str, signature: str | None) -> None:
        to_sign = sigv4.chunk_string_to_sign(self.params.amz_date, self.params.scope, self.previous,
                                             chunk_sha256)
        self._check(to_sign, signature)

    def check_trailer(self, trailer: bytes, signature: str | None) -> None:
        to_sign = sigv4.trailer_string_to_sign(self.params.amz_date, self.params.scope,
                                               self.previous, trailer)
        self._check(to_sign, signature)

    def _check(self, to_sign: str, signature: str | None) -> None:
        expected = sigv4.sign(self.key, to_sign)
        if signature is None or not hmac.compare_digest(expected, signature):
            raise S3Error("SignatureDoesNotMatch", "The chunk signature does not match.")
        self.previous = signature


async def _line(request: web.Request, allow_eof: bool = False) -> bytes | None:
    try:
        line = await request.content.readline()
    except ValueError:  # longer than the reader's buffer: not a chunk header
        raise S3Error("InvalidRequest", "Malformed aws-chunked body.") from None
    if not line and allow_eof:
        return None
    if not line.endswith(b"\n") or len(line) > MAX_CHUNK_HEADER:
        raise S3Error("IncompleteBody", "The aws-chunked body ended early or is malformed.")
    return line.rstrip(b"\r\n")


async def _header_line(request: web.Request) -> bytes:
    line = await _line(request)
    assert line is not None
    return line


def _chunk_header(line: bytes) -> tuple[int, str | None]:
    size_text, _, extension = line.decode("latin-1").partition(";")
    try:
        size = int(size_text, 16)
    except ValueError:
        raise S3Error("InvalidRequest", "Malformed aws-chunked chunk header.") from None
    signature = extension.partition("chunk-signature=")[2]
    return size, signature or None


async def _trailers(request: web.Request, signer: _ChunkSigner | None) -> dict[str, str]:
    trailers: dict[str, str] = {}
    raw = b""
    trailer_signature: str | None = None
    while line := await _line(request, allow_eof=True):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "x-amz-trailer-signature":
            trailer_signature = value.strip()
        else:
            trailers[name.strip().lower()] = value.strip()
            raw += line + b"\n"
    if signer is not None and trailers:
        signer.check_trailer(raw, trailer_signature)
    return trailers


async def _aws_chunked(request: web.Request, verifier: BodyVerifier,
                       principal: Principal | None) -> AsyncIterator[bytes]:
    payload = request.headers.get("x-amz-content-sha256", "")
    signed = payload.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    if signed and (principal is None or principal.sigv4 is None):
        raise S3Error("AccessDenied", "Signed aws-chunked bodies need a SigV4 signature.")
    signer = _ChunkSigner(principal) if signed and principal else None
    while True:
        size, signature = _chunk_header(await _header_line(request))
        chunk_hash = hashlib.sha256()
        remaining = size
        while remaining:
            piece = await request.content.read(min(remaining, PIECE))
            if not piece:
                raise S3Error("IncompleteBody")
            remaining -= len(piece)
            chunk_hash.update(piece)
            verifier.update(piece)
            yield piece
        if signer is not None:
            signer.check_chunk(chunk_hash.hexdigest(), signature)
        if size == 0:
            break
        if await _header_line(request) != b"":
            raise S3Error("IncompleteBody", "aws-chunked data is longer than its chunk size.")
    trailers = await _trailers(request, signer)
    decoded = request.headers.get("x-amz-decoded-content-length")
    if decoded is not None and decoded.isdigit() and int(decoded) != verifier.length:
        raise S3Error("IncompleteBody", "The decoded length does not match "
                      "x-amz-decoded-content-length.")
    verifier.finish(trailers)


def request_body(request: web.Request, principal: Principal | None) -> AsyncIterator[bytes]:
    """The decoded, verified body of an upload."""
    verifier = BodyVerifier(request, principal)
    if is_aws_chunked(request):
        return _aws_chunked(request, verifier, principal)
    return _plain(request, verifier)


def stored_content_encoding(request: web.Request) -> str | None:
    """Content-Encoding to keep with the object: aws-chunked is transport, not content."""
    codings = [c.strip() for c in request.headers.get("Content-Encoding", "").split(",")]
    kept = [c for c in codings if c and c != "aws-chunked"]
    return ", ".join(kept) or None
