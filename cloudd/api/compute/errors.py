"""Nova-shaped error bodies and request-body parsing with pydantic."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from cloudd import errors
from cloudd.web import inputs

M = TypeVar("M", bound=BaseModel)

# Nova's fault names by HTTP status; anything else is a computeFault.
_FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 429: "overLimit",
                415: "badMediaType", 501: "notImplemented", 503: "serviceUnavailable"}


def nova_error_body(status: int, message: str) -> dict[str, Any]:
    return {_FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}


class ComputeError(errors.CloudError):
    """The Compute API's own errors; the renderer (`nova_error_body`, the front middleware)
    takes any `CloudError`, a domain refusal included, by its status."""


class BadRequest(ComputeError, errors.BadRequest):
    pass


class Forbidden(ComputeError, errors.Forbidden):
    pass


class NotFound(ComputeError, errors.NotFound):
    pass


class NotAcceptable(ComputeError):
    status = 406


class Conflict(ComputeError, errors.Conflict):
    pass


class NotImplementedYet(ComputeError, errors.NotImplementedYet):
    pass


def error_response(status: int, message: str) -> web.Response:
    return web.json_response(nova_error_body(status, message), status=status)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "Invalid input for field/attribute " + "; ".join(parts)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_describe(exc)) from None


async def read_json(request: web.Request) -> Any:
    """The shared parser (size limit, depth, integer range); the front middleware renders its
    refusals as Nova faults."""
    if not request.can_read_body:
        raise BadRequest("The request body is missing.")
    return await inputs.read_json(request)


async def parse_body(request: web.Request, model: type[M]) -> M:
    return validate(model, await read_json(request))
