"""Microversion negotiation (Nova's api_version_request) and the compute front middleware.

The middleware gives every request a `req-<uuid>`, negotiates the version, and makes every
response (errors included) carry the request id and version headers in Nova's format.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cloudd.api.auth import REQUEST_ID_KEY, Handler
from cloudd.api.compute.errors import nova_error_body
from cloudd.api.keys import HOST_KEY
from cloudd.db import DatabaseError, DuplicateError, IntegrityError
from cloudd.errors import CloudError
from cloudd.log import request_id_var
from cloudd.rpc import RpcConnectionLost, RpcTimeout

LOG = logging.getLogger(__name__)

MIN_VERSION = "2.1"
_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
VARY = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"


@dataclass(frozen=True, order=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _FORMAT.match(text.strip())
        if not match:
            raise ValueError(text)
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        return self >= APIVersion.parse(text)


# A typed request key (aiohttp warns on string keys); the negotiated version of this request.
VERSION_KEY = web.RequestKey("cloudd_compute_version", APIVersion)


def max_version(app_config: Any) -> APIVersion:
    return APIVersion.parse(app_config.api.max_microversion)


def requested_version_text(request: web.Request) -> str | None:
    """The version the client asked for (the new header first), or None."""
    header = request.headers.get("OpenStack-API-Version", "")
    for item in header.split(","):
        service, _, value = item.strip().partition(" ")
        if service.lower() == "compute" and value.strip():
            return value.strip()
    legacy = request.headers.get("X-OpenStack-Nova-API-Version")
    return legacy.strip() if legacy else None


def negotiate(request: web.Request, maximum: APIVersion) -> APIVersion:
    text = requested_version_text(request)
    if text is None:
        return APIVersion.parse(MIN_VERSION)
    if text.lower() == "latest":
        return maximum
    try:
        version = APIVersion.parse(text)
    except ValueError:
        raise _VersionError(400, f"API Version String {text} is of invalid format. Must be of "
                                 "format MajorNum.MinorNum.") from None
    if not APIVersion.parse(MIN_VERSION) <= version <= maximum:
        raise _VersionError(406, f"Version {text} is not supported by the API. Minimum is "
                                 f"{MIN_VERSION} and maximum is {maximum}.")
    return version


class _VersionError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def request_version(request: web.Request) -> APIVersion:
    version = request.get(VERSION_KEY)
    return version if version is not None else APIVersion.parse(MIN_VERSION)


def _error(status: int, message: str, headers: Any = None) -> web.Response:
    response = web.json_response(nova_error_body(status, message), status=status)
    if headers:
        for name in ("Allow", "WWW-Authenticate"):
            if name in headers:
                response.headers[name] = headers[name]
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler and render every failure as a Nova fault."""
    try:
        maximum = max_version(request.config_dict[HOST_KEY].config)
        request[VERSION_KEY] = negotiate(request, maximum)
        response = await handler(request)
    except _VersionError as exc:
        return _error(exc.status, exc.message)
    # Any kind: a domain refusal, the shared body parser's InputRefused.
    except CloudError as exc:
        return _error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            return exc
        message = {404: "The resource could not be found.",
                   405: "The method is not allowed for the requested URL."}.get(exc.status, exc.reason)
        return _error(exc.status, message, exc.headers)
    except (DatabaseError, RpcConnectionLost, RpcTimeout) as exc:
        if isinstance(exc, DuplicateError | IntegrityError):  # a bug, not an outage
            LOG.exception("unexpected error in %s %s", request.method, request.path)
            return _error(500, "Unexpected API Error. Please report this at the cloudd issue "
                               "tracker and attach the controller log if possible.")
        # The database or a compute host is away for a moment: the client may retry.
        LOG.warning("%s %s: service unavailable: %s", request.method, request.path, exc)
        what = "the database" if isinstance(exc, DatabaseError) else "the compute host"
        return _error(503, f"Service temporarily unavailable: {what} did not answer. "
                           "Please retry.")
    except Exception:
        LOG.exception("unexpected error in %s %s", request.method, request.path)
        return _error(500, "Unexpected API Error. Please report this at the cloudd issue tracker "
                           "and attach the controller log if possible.")
    if response.status >= 400 and response.content_type != "application/json":
        return _error(response.status, response.reason or "Error")
    return response


@web.middleware
async def compute_front_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = f"req-{uuid.uuid4()}"
    request[REQUEST_ID_KEY] = request_id
    reset = request_id_var.set(request_id)
    try:
        response = await _answer(request, handler)
    finally:
        request_id_var.reset(reset)
    version = str(request_version(request))
    response.headers["X-OpenStack-Request-ID"] = request_id
    response.headers["X-Compute-Request-Id"] = request_id
    response.headers["OpenStack-API-Version"] = f"compute {version}"
    response.headers["X-OpenStack-Nova-API-Version"] = version
    response.headers["Vary"] = VARY
    return response
