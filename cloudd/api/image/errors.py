"""Glance-style errors: clients only look at the status code, the body says what was wrong."""

from __future__ import annotations

from typing import Any

from cloudd.api.errors import error_middleware_for

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
           413: "Request Entity Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error", 503: "Service Unavailable"}


def glance_error_body(status: int, message: str) -> dict[str, Any]:
    return {"code": status, "title": _TITLES.get(status, "Error"), "message": message}


class ImageApiError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ImageApiError):
    status = 400


class Forbidden(ImageApiError):
    status = 403


class NotFound(ImageApiError):
    status = 404


class Conflict(ImageApiError):
    status = 409


class Gone(ImageApiError):
    status = 410


class TooLarge(ImageApiError):
    status = 413


class UnsupportedMediaType(ImageApiError):
    status = 415


class Unavailable(ImageApiError):
    status = 503


# ImageApiError -> its status; aiohttp's own 404/405 in the same body format.
error_middleware = error_middleware_for(
    ImageApiError, lambda status, message, _exc: glance_error_body(status, message))
