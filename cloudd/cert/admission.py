"""Admission on the agent listener: every request, the websocket and the image routes alike, is
from an enrolled host, and carries that host's name from here on.

The handshake already required a client certificate chaining to the hosts CA; this middleware
asks the CertService whether its serial was issued to an enrolled host and is not revoked, and
stores the host name under `AGENT_HOST` for the handlers. Nothing else identifies a host: no
field of a request can name another one.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from cloudd.cert.service import CertService

LOG = logging.getLogger(__name__)
AGENT_HOST = web.RequestKey("cloudd_agent_host", str)


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER client certificate of the TLS connection `request` came over, if any."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


def admission_middleware(cert: CertService) -> Middleware:
    @web.middleware
    async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
        host_name, why = await cert.verified_agent(peer_certificate(request))
        if host_name is None:
            LOG.warning("refused %s %s from %s: %s", request.method, request.path,
                        request.remote, why)
            raise web.HTTPForbidden(text=why)
        request[AGENT_HOST] = host_name
        return await handler(request)

    return admit
