"""What both sides of host enrolment share, with nothing of the database or the controller's
services: the join token's format, the refusal both sides raise (``CertError``), and the type the
all-in-one agent finds the CA of its own process by (``HostsSigner``, which ``CertService`` is).
"""

from __future__ import annotations

import hmac

from cloudd import errors
from cloudd.core import Service


class CertError(errors.BadRequest):
    """A request the CA refuses (bad CSR, nothing to decrypt with, ...): the enrolment
    listener's 400."""


class HostsSigner(Service):
    """The hosts CA, when it runs in this process (the all-in-one): an agent there enrols with it
    directly instead of redeeming a join token over the network."""

    async def fetch_hosts_ca(self) -> str:
        """The hosts CA certificate (PEM): what agents pin."""
        raise NotImplementedError

    async def sign_agent_csr(self, host_name: str, csr_pem: str) -> str:
        """An agent's client certificate (PEM) for its CSR, with ``host_name`` as subject."""
        raise NotImplementedError


def split_join_token(token: str) -> tuple[str, str]:
    """(secret, CA fingerprint); ValueError for something that is not a join token."""
    secret, dot, fingerprint = token.strip().rpartition(".")
    if not dot or not secret or len(fingerprint) != 64:
        raise ValueError("malformed join token")
    return secret, fingerprint.lower()


def fingerprint_matches(expected: str, actual: str) -> bool:
    return hmac.compare_digest(expected.lower(), actual.lower())
