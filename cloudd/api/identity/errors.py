"""Identity errors in Keystone's body format, and request-body parsing with pydantic."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from cloudd.api import inputs
from cloudd.api.auth import Handler, keystone_error_body, public_url
from cloudd.db import DuplicateError

LOG = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class IdentityError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(IdentityError):
    status = 400


class Unauthorized(IdentityError):
    status = 401


class Forbidden(IdentityError):
    status = 403


class NotFound(IdentityError):
    status = 404


class Conflict(IdentityError):
    status = 409


def error_response(status: int, message: str, headers: dict[str, str] | None = None) \
        -> web.Response:
    return web.json_response(keystone_error_body(status, message), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Keystone error document."""
    try:
        return await handler(request)
    except Unauthorized as exc:
        challenge = f'Keystone uri="{public_url(request)}/identity"'
        return error_response(401, exc.message, {"WWW-Authenticate": challenge})
    except (IdentityError, inputs.InputRefused) as exc:
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
