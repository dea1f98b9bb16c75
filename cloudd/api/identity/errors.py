"""Identity errors in Keystone's body format, and request-body parsing with pydantic."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from cloudd import errors
from cloudd.api.auth import Handler, keystone_error_body, public_url
from cloudd.db import DuplicateError
from cloudd.web import inputs

LOG = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class IdentityError(errors.CloudError):
    """The Identity API's own errors; the renderer (error_middleware) takes any `CloudError`,
    the identity rules' refusals (cloudd.identity.errors) included, by its status."""


class BadRequest(IdentityError, errors.BadRequest):
    pass


class Unauthorized(IdentityError, errors.Unauthorized):
    pass


class Forbidden(IdentityError, errors.Forbidden):
    pass


class NotFound(IdentityError, errors.NotFound):
    pass


class Conflict(IdentityError, errors.Conflict):
    pass


def error_response(status: int, message: str, headers: dict[str, str] | None = None) \
        -> web.Response:
    return web.json_response(keystone_error_body(status, message), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Keystone error document."""
    try:
        return await handler(request)
    except errors.Unauthorized as exc:
        challenge = f'Keystone uri="{public_url(request)}/identity"'
        return error_response(401, exc.message, {"WWW-Authenticate": challenge})
    except errors.CloudError as exc:  # any kind, the shared body parser's InputRefused too
        return error_response(exc.status, exc.message)
    except DuplicateError:
        return error_response(409, "Conflict occurred attempting to store the entity: "
                                   "the name is already in use.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason, {
            k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except Exception:
        LOG.exception("identity request %s %s failed", request.method, request.path)
        return error_response(500, "An unexpected error prevented the server from fulfilling "
                                   "your request.")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated against `model`; 400 with the reason otherwise."""
    raw: Any = await inputs.read_json(request)  # refusals: 400/413 by error_middleware
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise BadRequest(f"Invalid input for field(s): {problems}") from None
