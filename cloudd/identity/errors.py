"""What the identity rules refuse, each of its kind in the error base (cloudd.errors): the identity
API renders them with that kind's Keystone status; other callers catch them by class."""

from __future__ import annotations

from cloudd import errors


class IdentityRefused(errors.CloudError):
    """Any refusal of the identity rules."""


class InvalidIdentityRequest(IdentityRefused, errors.BadRequest):
    """The request asks for something the identity service does not support."""


class IdentityNotFound(IdentityRefused, errors.NotFound):
    """A user, project, role, assignment or credential that does not exist."""


class IdentityConflict(IdentityRefused, errors.Conflict):
    """A name already taken."""


class AuthenticationRefused(IdentityRefused, errors.Unauthorized):
    """A token that may not be issued: no such project, or no role on it."""


class WrongPassword(IdentityRefused, errors.Unauthorized):
    """A password that does not match the stored one."""
