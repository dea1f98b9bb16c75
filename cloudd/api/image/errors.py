"""Glance-style errors: clients only look at the status code, the body says what was wrong."""

from __future__ import annotations

from typing import Any

from cloudd import errors
from cloudd.api.errors import error_middleware_for

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
           413: "Request Entity Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error", 503: "Service Unavailable"}


def glance_error_body(status: int, message: str) -> dict[str, Any]:
    return {"code": status, "title": _TITLES.get(status, "Error"), "message": message}


class ImageApiError(errors.CloudError):
    """The Image API's own errors; its renderer takes any `CloudError`, a domain refusal
    included, by its status."""


class BadRequest(ImageApiError, errors.BadRequest):
    pass


class Forbidden(ImageApiError, errors.Forbidden):
    pass


class NotFound(ImageApiError, errors.NotFound):
    pass


class Conflict(ImageApiError, errors.Conflict):
    pass


class Gone(ImageApiError, errors.Gone):
    pass


class TooLarge(ImageApiError, errors.OverLimit):
    pass


class UnsupportedMediaType(ImageApiError):
    status = 415


class Unavailable(ImageApiError, errors.Unavailable):
    pass


# Any CloudError -> its status; aiohttp's own 404/405 in the same body format.
error_middleware = error_middleware_for(
    errors.CloudError, lambda status, message, _exc: glance_error_body(status, message))
