"""The S3 application: every request goes through one dispatcher that finds the bucket and key,
authenticates, picks the operation from method + sub-resource, and renders S3 errors.

Authentication also runs in the `Expect: 100-continue` handler, so a refused upload is refused
before the client sends its body (boto3 and awscli always ask for 100-continue on uploads).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from cloudd.awsauth.errors import SignatureError
from cloudd.config.models import ObjectstoreSection
from cloudd.db import Database
from cloudd.errors import CloudError
from cloudd.objectstore import buckets, multipart, objects
from cloudd.objectstore.auth import Principal, authenticate
from cloudd.objectstore.context import S3Request, parse_location
from cloudd.objectstore.errors import S3Error
from cloudd.objectstore.storage import ObjectStore
from cloudd.web.guards import PerClientLimit, TooManyRequests
from cloudd.web.inputs import refuse_nul

Handler = Callable[[S3Request], Awaitable[web.StreamResponse]]
DB_KEY = web.AppKey("s3_db", Database)
STORE_KEY = web.AppKey("s3_store", ObjectStore)
SETTINGS_KEY = web.AppKey("s3_settings", ObjectstoreSection)
CLIENT_LIMIT_KEY = web.AppKey("s3_client_limit", PerClientLimit)
REGIONS_KEY = web.AppKey("s3_regions", tuple)  # the regions SigV4 scopes may name
REQUEST_ID = web.RequestKey("s3_request_id", str)
# (the requester,) once authenticated: a tuple, so that "anonymous" (None) is also remembered.
PRINCIPAL = web.RequestKey("s3_principal", tuple)
LOCATION = web.RequestKey("s3_location", tuple)


def _with(flag: str, when: Handler, otherwise: Handler) -> Callable[[S3Request], Handler]:
    return lambda ctx: when if ctx.has(flag) else otherwise


def _bucket_get(ctx: S3Request) -> Handler:
    for flag, handler in (("uploads", buckets.list_uploads), ("location", buckets.get_location),
                          ("acl", buckets.get_bucket_acl)):
        if ctx.has(flag):
            return handler
    return buckets.list_objects


def _bucket_post(ctx: S3Request) -> Handler:
    if ctx.has("delete"):
        return buckets.delete_objects
    raise S3Error("MethodNotAllowed")


def _object_put(ctx: S3Request) -> Handler:
    if ctx.has("uploadId"):
        return multipart.upload_part
    return objects.put_object_acl if ctx.has("acl") else objects.put_object


def _object_get(ctx: S3Request) -> Handler:
    if ctx.has("uploadId"):
        return multipart.list_parts
    return objects.get_object_acl if ctx.has("acl") else objects.get_object


async def _head_object(ctx: S3Request) -> web.StreamResponse:
    return await objects.get_object(ctx, head=True)


def _object_post(ctx: S3Request) -> Handler:
    if ctx.has("uploads"):
        return multipart.initiate
    if ctx.has("uploadId"):
        return multipart.complete
    raise S3Error("MethodNotAllowed")


ROUTES: dict[tuple[str, str], Callable[[S3Request], Handler]] = {
    ("service", "GET"): lambda ctx: buckets.list_all_buckets,
    ("bucket", "PUT"): _with("acl", buckets.put_bucket_acl, buckets.create_bucket),
    ("bucket", "HEAD"): lambda ctx: buckets.head_bucket,
    ("bucket", "DELETE"): lambda ctx: buckets.delete_bucket,
    ("bucket", "GET"): _bucket_get,
    ("bucket", "POST"): _bucket_post,
    ("object", "PUT"): _object_put,
    ("object", "GET"): _object_get,
    ("object", "HEAD"): lambda ctx: _head_object,
    ("object", "DELETE"): _with("uploadId", multipart.abort, objects.delete_object),
    ("object", "POST"): _object_post,
}


def _pick(ctx: S3Request) -> Handler:
    level = "object" if ctx.key else "bucket" if ctx.bucket else "service"
    chooser = ROUTES.get((level, ctx.request.method))
    if chooser is None:
        raise S3Error("MethodNotAllowed", Method=ctx.request.method, ResourceType=level.upper())
    return chooser(ctx)


def error_response(request: web.Request, error: S3Error) -> web.Response:
    if request.method == "HEAD" or error.status == 304:
        return web.Response(status=error.status)  # no body, as S3 (and botocore) expect
    body = error.to_xml(request.path, request.get(REQUEST_ID, ""))
    return web.Response(status=error.status, body=body, content_type="application/xml")


READ_METHODS = frozenset({"GET", "HEAD"})


def _check_role(request: web.Request, principal: Principal | None) -> None:
    """Every other method changes something, which takes the member role in the key's
    project (a reader's key only reads); anonymous writes are refused by the handlers."""
    if principal is not None and request.method not in READ_METHODS and not principal.may_write:
        raise S3Error("AccessDenied", "The reader role of this access key only reads.")


async def _authenticate(request: web.Request) -> Principal | None:
    """Once per request (the 100-continue handler may already have done it), with the role
    check, so that a refused upload is refused before its body is sent."""
    if PRINCIPAL not in request:
        bucket, key, in_host = parse_location(request, request.app[SETTINGS_KEY].virtual_host_domain)
        request[LOCATION] = (bucket, key)
        request[PRINCIPAL] = (await authenticate(request, request.app[DB_KEY],
                                                 bucket if in_host else None,
                                                 request.app[REGIONS_KEY]),)
    principal: Principal | None = request[PRINCIPAL][0]
    _check_role(request, principal)
    return principal


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    request[REQUEST_ID] = uuid.uuid4().hex[:16].upper()
    if request.headers.get("Expect", "").lower() != "100-continue":
        return None
    try:
        await _authenticate(request)
    except (S3Error, SignatureError) as error:
        refused = error_response(request, S3Error.from_kind(error))
        # The client may send its body anyway; on a kept-alive connection those bytes would be
        # read as the next request, so the connection ends with this answer.
        refused.force_close()
        return refused
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def dispatch(request: web.Request) -> web.StreamResponse:
    request.setdefault(REQUEST_ID, uuid.uuid4().hex[:16].upper())
    try:
        with request.app[CLIENT_LIMIT_KEY].slot(request):  # before authentication: per address
            refuse_nul([unquote(request.raw_path), *(x for pair in request.query.items() for x in pair)])
            principal = await _authenticate(request)
            bucket, key = request[LOCATION]
            ctx = S3Request(request, request.app[DB_KEY], request.app[STORE_KEY], principal, bucket,
                            key, request[REQUEST_ID])
            return await _pick(ctx)(ctx)
    except TooManyRequests:
        return error_response(request, S3Error("SlowDown"))
    except CloudError as error:  # S3's own, or any other kind (S3Error.from_kind maps it)
        return error_response(request, S3Error.from_kind(error))


async def _request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-amz-request-id"] = request.get(REQUEST_ID, "")
    response.headers.setdefault("Server", "cloudd-objectstore")


def s3_app(db: Database, store: ObjectStore, settings: ObjectstoreSection,
           cloud_region: str = "") -> web.Application:
    """`cloud_region` (the cloud's own, [ec2] region) is accepted in SigV4 scopes besides
    [objectstore] region: clients set up for the cloud's EC2 API sign S3 calls with it."""
    app = web.Application(client_max_size=1024**2)
    app[DB_KEY], app[STORE_KEY], app[SETTINGS_KEY] = db, store, settings
    app[CLIENT_LIMIT_KEY] = PerClientLimit()
    app[REGIONS_KEY] = tuple(dict.fromkeys(r for r in (settings.region, cloud_region) if r))
    app.router.add_route("*", "/{path:.*}", dispatch, expect_handler=expect_continue)
    app.on_response_prepare.append(_request_id_header)
    return app
