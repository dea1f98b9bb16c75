"""The controller's enrolment listener (``[rpc] enroll_port``, 8781), TLS with the controller's
certificate only. It serves hosts holding a join token from `cloudd manage host enroll HOST`:
``GET /ca.pem`` (the hosts CA certificate, public; the token pins its fingerprint) and ``POST
/enroll`` ``{"token", "csr"}`` -> ``{"host", "certificate", "ca_certificate"}``. It is apart from
the agent listener because that one requires a client certificate at the handshake, which a host
that comes to enroll does not have yet. The agent's side is ``cloudd.agent.tls``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from cloudd.cert import enroll
from cloudd.cert.service import CertError, CertService
from cloudd.listener import Listener

LOG = logging.getLogger(__name__)
CERT_SERVICE_KEY = web.AppKey("cloudd_cert_service", CertService)
ENROL_BODY_LIMIT = 64 * 1024  # a token and one CSR


class EnrolRequest(BaseModel):
    token: str = Field(min_length=1, max_length=512)
    csr: str = Field(min_length=1, max_length=16 * 1024)


async def start_enrolment_listener(cert: CertService, listen: str, port: int) -> Listener:
    """The enrolment listener, started (its bound port is ``listener.port``)."""
    app = web.Application(client_max_size=ENROL_BODY_LIMIT)
    app[CERT_SERVICE_KEY] = cert
    app.router.add_get("/ca.pem", _ca_pem)
    app.router.add_post("/enroll", _enroll)
    listener = Listener()
    await listener.start(app, listen, port, cert.enrolment_ssl_context())
    return listener


async def _ca_pem(request: web.Request) -> web.Response:
    return web.Response(text=await request.app[CERT_SERVICE_KEY].fetch_hosts_ca(),
                        content_type="application/x-pem-file")


async def _enroll(request: web.Request) -> web.Response:
    cert = request.app[CERT_SERVICE_KEY]
    try:
        body = EnrolRequest.model_validate_json(await request.read())  # 413 past the limit
    except ValidationError:
        return web.json_response({"error": "expected {\"token\": ..., \"csr\": ...}"}, status=400)
    host_name = await enroll.redeem_join_token(cert.db, body.token)
    if host_name is None:
        LOG.warning("refused an enrolment from %s: unknown, used or expired join token",
                    request.remote)
        return web.json_response({"error": "unknown, used or expired join token"}, status=403)
    try:
        cert_pem = await cert.sign_agent_csr(host_name, body.csr)
    except CertError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"host": host_name, "certificate": cert_pem,
                              "ca_certificate": await cert.fetch_hosts_ca()})
