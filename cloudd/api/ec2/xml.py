"""EC2 replies and errors as botocore parses them (ec2-s3.md §4, §9, §10).

A reply body is a Python structure whose dict keys are already the XML names: a list becomes
`<item>` children, a bool `true`/`false`, and a None value is left out entirely (botocore fails
a whole call on an empty integer or timestamp element).
"""

from __future__ import annotations

import time
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from cloudd import errors
from cloudd.conductor.service import HostUnavailable
from cloudd.vocab.states import InvalidInstanceState
from cloudd.web.inputs import InputRefused

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"

# EC2 error code -> HTTP status (any non-2xx with the Errors body becomes a ClientError).
_STATUS = {"AuthFailure": 401, "SignatureDoesNotMatch": 403, "UnauthorizedOperation": 403,
           "OptInRequired": 403, "InternalError": 500, "Unavailable": 503}


class Ec2Error(errors.CloudError):
    """An EC2 error reply: `code` is what boto3's ClientError reports as Error.Code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or _STATUS.get(code, 400)

    @classmethod
    def from_kind(cls, error: errors.CloudError) -> Ec2Error:
        """Any other `CloudError` (a domain refusal no handler translated): the code EC2 has for
        its class, with that code's status; else the nearest generic EC2 code, with the kind's
        status."""
        if isinstance(error, InputRefused):  # the shared body parser: too large, or malformed
            code = "RequestEntityTooLarge" if error.status == 413 else "InvalidParameterValue"
            return cls(code, error.message, error.status)
        own = next((code for cls_, code in _CLASS_CODES if isinstance(error, cls_)), None)
        if own is not None:
            return cls(own, error.message)
        code = next((code for kind, code in _KIND_CODES if isinstance(error, kind)), "InternalError")
        return cls(code, error.message, error.status)


# Domain refusals EC2 has its own code for (checked before the kinds).
_CLASS_CODES: list[tuple[type[errors.CloudError], str]] = [
    (InvalidInstanceState, "IncorrectInstanceState"), (HostUnavailable, "IncorrectInstanceState")]

# The error base's kinds -> EC2's generic codes (EC2 has resource-specific NotFound codes only:
# a not-found reference is an invalid parameter value).
_KIND_CODES: list[tuple[type[errors.CloudError], str]] = [
    (errors.Unauthorized, "AuthFailure"), (errors.QuotaExceeded, "ResourceLimitExceeded"),
    (errors.Forbidden, "UnauthorizedOperation"), (errors.BadRequest, "InvalidParameterValue"),
    (errors.NotFound, "InvalidParameterValue"), (errors.Conflict, "IncorrectState"),
    (errors.Unavailable, "Unavailable")]


def missing(name: str) -> Ec2Error:
    return Ec2Error("MissingParameter",
                    f"The request must contain the parameter {name}")


def invalid(message: str) -> Ec2Error:
    return Ec2Error("InvalidParameterValue", message)


def timestamp(epoch: float | None) -> str | None:
    """EC2's timestamp form (milliseconds, Z), or None (the element is then omitted)."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + \
        f".{int(epoch * 1000) % 1000:03d}Z"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _render(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, child in value.items():
            _render(key, child, out)
        out.append(f"</{name}>")
    elif isinstance(value, list | tuple):
        out.append(f"<{name}>")
        for item in value:
            if item is not None:
                _render("item", item, out)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_value(value)}</{name}>")


def render_body(action: str, request_id: str, body: dict[str, Any]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<{action}Response xmlns="{NAMESPACE}">', f"<requestId>{request_id}</requestId>"]
    for key, value in body.items():
        _render(key, value, out)
    out.append(f"</{action}Response>")
    return "".join(out)


def response(action: str, request_id: str, body: dict[str, Any]) -> web.Response:
    return web.Response(text=render_body(action, request_id, body), content_type="text/xml",
                        charset="utf-8")


def error_response(error: Ec2Error, request_id: str) -> web.Response:
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>")
    return web.Response(text=text, status=error.status, content_type="text/xml", charset="utf-8")
