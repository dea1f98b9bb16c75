"""Neutron-shaped errors: ``{"NeutronError": {"type", "message", "detail"}}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd import errors
from cloudd.api.errors import error_middleware_for
from cloudd.web import inputs

_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "PolicyNotAuthorized",
          404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "Conflict",
          500: "HTTPInternalServerError", 503: "ServiceUnavailable"}


def neutron_error_body(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    return {"NeutronError": {"type": kind or _TYPES.get(status, "NeutronException"),
                             "message": message, "detail": ""}}


class NeutronError(errors.CloudError):
    """The Networking API's own errors, `kind` naming Neutron's exception type; its renderer
    takes any `CloudError`, a domain refusal included, by its status."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class BadRequest(NeutronError, errors.BadRequest):
    pass


class NotFound(NeutronError, errors.NotFound):
    pass


class Conflict(NeutronError, errors.Conflict):
    pass


# Any CloudError -> its status; the router's own 404/405 in the same body format.
error_middleware = error_middleware_for(
    errors.CloudError,
    lambda status, message, exc: neutron_error_body(status, message, getattr(exc, "kind", None)))


async def read_resource(request: web.Request, resource: str) -> dict[str, Any]:
    """The ``{"<resource>": {...}}`` body of a POST or PUT."""
    # The shared parser: its refusals (400, 413) leave in Neutron's error body.
    body = await inputs.read_json(request) if request.can_read_body else None
    if not isinstance(body, dict) or not isinstance(body.get(resource), dict):
        raise BadRequest(f"Resource body required: {{\"{resource}\": {{...}}}}")
    data: dict[str, Any] = body[resource]
    return data
