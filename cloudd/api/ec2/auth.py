"""Who sent an EC2 Query call: SigV4 (what boto3 sends) or SigV2 query/form signing (boto3's
`signature_version="v2"`, euca2ools), checked against the Identity API's EC2 credentials.

The SigV4 canonical request, signing key and signature check are shared with S3
(`cloudd.awsauth.sigv4`); EC2 differs only in the payload hash (SHA-256 of the form body:
boto3 sends no X-Amz-Content-SHA256 to EC2) and the service name in the scope (`ec2`).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import web

from cloudd.api.ec2.xml import Ec2Error
from cloudd.awsauth import sigv2, sigv4
from cloudd.awsauth.errors import SignatureError
from cloudd.db import Executor
from cloudd.identity.credentials import credential_refusal, lookup_ec2_credential
from cloudd.identity.policy import RequestContext
from cloudd.identity.records import CredentialGrant

MAX_SKEW = 15 * 60  # seconds a signed request's date may differ from ours


def _auth_failure(message: str = "AWS was not able to validate the provided access "
                  "credentials") -> Ec2Error:
    return Ec2Error("AuthFailure", message)


def _signature_mismatch() -> Ec2Error:
    return Ec2Error("SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method.")


def _check_time(moment: datetime, now: float) -> None:
    if abs(moment.timestamp() - now) > MAX_SKEW:
        raise Ec2Error("RequestExpired",
                       f"Request has expired. Timestamp date is {moment.isoformat()}")


def _parse_iso(value: str) -> datetime:
    """SigV2 Timestamp/Expires: ISO 8601, with or without fractions and zone."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Ec2Error("InvalidParameterValue", f"Invalid timestamp {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _credential(db: Executor, access: str) -> CredentialGrant:
    cred = await lookup_ec2_credential(db, access)
    if cred is None:
        raise _auth_failure()
    return cred


def _sigv4_params(request: web.Request) -> sigv4.SigV4Params | None:
    header = request.headers.get("Authorization", "")
    try:
        if header.startswith(sigv4.ALGORITHM):
            return sigv4.parse_authorization(header, request.headers)
        if "X-Amz-Algorithm" in request.query:
            return sigv4.parse_presigned(dict(request.query))
    except SignatureError as exc:
        raise Ec2Error("IncompleteSignature", exc.message or exc.code) from None
    if header:
        raise Ec2Error("IncompleteSignature", "Unsupported Authorization Type")
    return None


async def _verify_sigv4(request: web.Request, db: Executor, body: bytes,
                        params: sigv4.SigV4Params, now: float, region: str) -> CredentialGrant:
    cred = await _credential(db, params.access)
    if params.service != "ec2":
        raise Ec2Error("IncompleteSignature",
                       f"Credential should be scoped to correct service: 'ec2', not "
                       f"'{params.service}'")
    try:
        moment = datetime.strptime(params.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Ec2Error("IncompleteSignature", f"Invalid X-Amz-Date {params.amz_date!r}") from None
    if params.presigned:
        if now > moment.timestamp() + (params.expires or 0) or moment.timestamp() - now > MAX_SKEW:
            raise Ec2Error("RequestExpired", "Request has expired.")
    else:
        _check_time(moment, now)
    try:
        sigv4.check_scope(params, (region,), "ec2")
    except SignatureError as exc:
        raise Ec2Error("IncompleteSignature", exc.message or exc.code) from None
    path, _, query = request.raw_path.partition("?")
    try:
        sigv4.verify(params, cred.secret, request.method, path, query, request.headers,
                     hashlib.sha256(body).hexdigest())
    except SignatureError:
        raise _signature_mismatch() from None
    return cred


def sigv2_string_to_sign(method: str, host: str, path: str, values: dict[str, str]) -> str:
    """VERB, host[:port], path and every parameter but Signature, sorted and %-encoded."""
    pairs = sorted((k, v) for k, v in values.items() if k != "Signature")
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return f"{method}\n{host.lower()}\n{path or '/'}\n{query}"


async def _verify_sigv2(request: web.Request, db: Executor, values: dict[str, str],
                        now: float) -> CredentialGrant:
    if values.get("SignatureVersion") != "2":
        raise Ec2Error("AuthFailure", "Only SignatureVersion 2 and Signature Version 4 are "
                       "supported")
    if values.get("SignatureMethod", "HmacSHA256") not in ("HmacSHA256", "HmacSHA1"):
        raise Ec2Error("AuthFailure", "SignatureMethod must be HmacSHA256 or HmacSHA1")
    cred = await _credential(db, values["AWSAccessKeyId"])
    if "Expires" in values:
        if _parse_iso(values["Expires"]).timestamp() < now:
            raise Ec2Error("RequestExpired", f"Request has expired. Expires {values['Expires']}")
    elif "Timestamp" in values:
        _check_time(_parse_iso(values["Timestamp"]), now)
    else:
        raise Ec2Error("MissingParameter", "The request must contain the parameter Timestamp")
    path = request.raw_path.partition("?")[0]
    candidates = [sigv2_string_to_sign(request.method, request.host, p, values)
                  for p in dict.fromkeys([path, path.rstrip("/") or "/"])]
    try:
        sigv2.verify(cred.secret, values.get("Signature", ""), candidates)
    except SignatureError:
        raise _signature_mismatch() from None
    return cred


async def authenticate(request: web.Request, db: Executor, body: bytes, values: dict[str, str],
                       request_id: str, region: str) -> RequestContext:
    """The caller's context (its credential's user, project and roles) or an Ec2Error."""
    now = time.time()
    params = _sigv4_params(request)
    if params is not None:
        cred = await _verify_sigv4(request, db, body, params, now, region)
    elif "AWSAccessKeyId" in values and "Signature" in values:
        cred = await _verify_sigv2(request, db, values, now)
    else:
        raise Ec2Error("AuthFailure", "Signature not provided")
    if refusal := credential_refusal(cred):  # checked on every call: roles change at once
        raise _auth_failure(refusal)
    roles = frozenset(cred.roles)
    return RequestContext(user_id=cred.user_id, user_name=cred.user_name,
                          project_id=cred.project_id, project_name=cred.project_name, roles=roles,
                          is_admin="admin" in roles, token_hash="", request_id=request_id)
