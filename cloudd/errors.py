"""The one error base: what went wrong, not how it is written on the wire.

Every API error and every domain refusal derives from `CloudError` through one of the kinds below.
`status` is the HTTP status the kind means (the common denominator of the APIs, all HTTP); each
API's renderer turns a `CloudError` into its own body: Nova's fault (cloudd.api.compute.errors),
Keystone's error (cloudd.api.identity.errors), Glance's (cloudd.api.image.errors), Neutron's
NeutronError (cloudd.api.network.errors), S3's and EC2's XML. So an API renders a domain refusal
it was not told about with the right status instead of a 500.

A core module: it imports nothing of cloudd, so every layer, the agent tree included, may use it.
"""

from __future__ import annotations


class CloudError(Exception):
    """Something the cloud refuses or failed at; `message` is for the user."""

    status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CloudError):
    """The request is malformed or asks for something that cannot be done as asked."""

    status = 400


class Unauthorized(CloudError):
    """No (valid) credentials."""

    status = 401


class Forbidden(CloudError):
    """Valid credentials, but not allowed."""

    status = 403


class QuotaExceeded(Forbidden):
    """Over a project's quota (Nova and Ceph RGW both answer 403)."""


class NotFound(CloudError):
    status = 404


class Conflict(CloudError):
    """The resource is not in a state that allows this, or the name is taken."""

    status = 409


class Gone(CloudError):
    status = 410


class OverLimit(CloudError):
    """Too large (a body, an upload)."""

    status = 413


class Unavailable(CloudError):
    """A service the request needs is away for a moment; the client may retry."""

    status = 503


class NotImplementedYet(CloudError):
    status = 501
