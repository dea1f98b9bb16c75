"""One parser for what a client sends, shared by every API: bodies bounded before they are read,
JSON that can never crash a handler, and integers that fit the database.

`InputRefused` is a kind of the error base (`BodyTooLarge` an `OverLimit`), so each API's
renderer writes it in its own error format (Nova fault, Keystone error, Glance, Neutron, EC2 or
S3 XML): a hostile body is always a 400 or 413 of that API, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from cloudd import errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Nova's own limit (oslo.middleware sizelimit) is 112 KiB; 1 MiB leaves room for user_data and
# metadata while keeping a body's buffering and parsing cheap for the one event loop.
JSON_BODY_LIMIT = 1024 * 1024
# Asking for a token needs a user name, a password and a scope: a few hundred bytes.
AUTH_BODY_LIMIT = 64 * 1024
# A small body still must arrive: a client sending one byte a minute holds no handler forever.
BODY_READ_TIMEOUT = 60.0
# The deepest real body (server create with networks / block devices) is under 6 levels.
MAX_JSON_DEPTH = 32
# Every integer column is a BIGINT at most; a larger value could only fail deeper, as a 500.
INT64_MAX = 2**63 - 1
_INT64_DIGITS = len(str(INT64_MAX))

BODY_LIMIT_KEY = web.RequestKey("cloudd_body_limit", int)


class InputRefused(errors.BadRequest):
    """A request refused for its shape (400), before any handler logic runs; `status` 408
    when its body did not arrive in time."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BodyTooLarge(InputRefused, errors.OverLimit):
    """A body over its limit (413)."""

    status = errors.OverLimit.status


def body_too_large(limit: int) -> InputRefused:
    return BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _INT64_DIGITS:
        raise InputRefused(f"Integer out of range in the request body: {text[:24]}...")
    value = int(text)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise InputRefused(f"Integer out of range in the request body: {text}")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputRefused(f"Number out of range in the request body: {text[:24]}")
    return value


def _json_constant(name: str) -> Any:
    # json accepts NaN and Infinity, which no API takes and PostgreSQL's JSON refuses.
    raise InputRefused(f"{name} is not a valid JSON value.")


def _check_nul(text: str) -> None:
    # PostgreSQL's text refuses NUL: stored, it would fail deep in the database layer.
    if "\x00" in text:
        raise InputRefused("The request contains a NUL character.")


def refuse_nul(texts: Iterable[str]) -> None:
    """InputRefused(400) when any of `texts` (query names and values, a path) holds a NUL."""
    for text in texts:
        _check_nul(text)


def _check_document(data: Any) -> None:
    """Depth and NUL characters, iteratively, so that the check itself cannot recurse."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputRefused(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(node, dict):
            for key in node:
                _check_nul(key)
            children = node.values()
        else:
            children = node
        for child in children:
            if isinstance(child, str):
                _check_nul(child)
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))


def parse_json(raw: bytes | str) -> Any:
    """The document, or InputRefused(400) for anything malformed, too deep or out of range."""
    try:
        data = json.loads(raw, parse_int=_json_int, parse_float=_json_float,
                          parse_constant=_json_constant)
    except InputRefused:
        raise
    except RecursionError:
        raise InputRefused(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.") \
            from None
    except (ValueError, UnicodeDecodeError):
        raise InputRefused("Malformed request body: not valid JSON.") from None
    if isinstance(data, dict | list):
        _check_document(data)
    elif isinstance(data, str):
        _check_nul(data)
    return data


def body_limit(request: web.Request) -> int:
    limit: int = request.get(BODY_LIMIT_KEY, JSON_BODY_LIMIT)
    return limit


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` (the route's limit by
    default): Content-Length is checked before reading, a chunked body while it arrives."""
    limit = body_limit(request) if limit is None else limit
    if request.content_length is not None and request.content_length > limit:
        raise body_too_large(limit)
    pieces: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT):
            while piece := await request.content.readany():
                size += len(piece)
                if size > limit:
                    raise body_too_large(limit)
                pieces.append(piece)
    except TimeoutError:
        raise InputRefused("The request body did not arrive in time.", 408) from None
    return b"".join(pieces)


async def read_json(request: web.Request) -> Any:
    """The JSON body of the request (the route's size limit, then `parse_json`)."""
    return parse_json(await read_body(request))


def body_limit_middleware(limit_for: Callable[[web.Request], int | None]) -> Any:
    """Per route family: `limit_for(request)` is the largest body accepted, or None for a route
    that streams its body to storage under its own cap (image data). Placed inside the API's
    error middleware, so the 413 has that API's shape; nothing is read before the check.
    Query parameters with a NUL character are refused here too (PostgreSQL cannot take them)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        refuse_nul(item for pair in request.query.items() for item in pair)
        limit = limit_for(request)
        if limit is not None:
            if request.content_length is not None and request.content_length > limit:
                raise body_too_large(limit)
            request[BODY_LIMIT_KEY] = limit
        return await handler(request)

    return middleware


def parse_count(text: str, name: str, maximum: int = INT64_MAX) -> int:
    """A non-negative decimal integer from a query parameter or header: ASCII digits only
    (`str.isdigit` also accepts '²', which `int` refuses), never more digits than a BIGINT."""
    if not text or len(text) > _INT64_DIGITS or not (text.isascii() and text.isdigit()):
        raise InputRefused(f"{name} must be a non-negative integer.")
    value = int(text)
    if value > maximum:
        raise InputRefused(f"{name} must be at most {maximum}.")
    return value
