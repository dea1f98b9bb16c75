"""TLS on the agent websocket: the controller's enrolment endpoints and the agent's side.

Controller (on the agent listener, next to ``/agent``): ``GET /ca.pem`` (the CA certificate,
public) and ``POST /enroll`` ``{"token", "csr"}`` -> ``{"host", "certificate", "ca_certificate"}``.

Agent: ``agent_ssl_context`` returns the client context for ``wss://``, enrolling first when the
agent has no certificate yet — with ``[cert] join_token`` over the network, or directly from the
CertService when both run in one process (the all-in-one). Files live in
``<state_dir>/agent-cert/`` (key 0600).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloudd.cert import enroll
from cloudd.cert.ca import key_pem, write_private, write_public
from cloudd.cert.service import CertError, CertService
from cloudd.config import CloudConfig
from cloudd.core import ServiceHost

LOG = logging.getLogger(__name__)
CERT_SERVICE_KEY = web.AppKey("cloudd_cert_service", CertService)


# ----- controller side ----------------------------------------------------------------------
def add_enrolment_routes(app: web.Application, cert: CertService) -> None:
    app[CERT_SERVICE_KEY] = cert
    app.router.add_get("/ca.pem", _ca_pem)
    app.router.add_post("/enroll", _enroll)


async def _ca_pem(request: web.Request) -> web.Response:
    return web.Response(text=await request.app[CERT_SERVICE_KEY].fetch_ca(),
                        content_type="application/x-pem-file")


async def _enroll(request: web.Request) -> web.Response:
    cert = request.app[CERT_SERVICE_KEY]
    try:
        body = await request.json()
        token, csr = str(body["token"]), str(body["csr"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "expected {\"token\": ..., \"csr\": ...}"}, status=400)
    host_name = await enroll.redeem_join_token(cert.db, token)
    if host_name is None:
        LOG.warning("refused an enrolment from %s: unknown, used or expired join token",
                    request.remote)
        return web.json_response({"error": "unknown, used or expired join token"}, status=403)
    try:
        cert_pem = await cert.sign_agent_csr(host_name, csr)
    except CertError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"host": host_name, "certificate": cert_pem,
                              "ca_certificate": await cert.fetch_ca()})


# ----- agent side ---------------------------------------------------------------------------
def agent_cert_dir(cfg: CloudConfig) -> Path:
    return Path(cfg.default.state_dir) / "agent-cert"


async def agent_ssl_context(host: ServiceHost, host_name: str, controller_url: str
                            ) -> ssl.SSLContext:
    """The agent's client context (its certificate, the pinned CA), enrolling if needed."""
    directory = agent_cert_dir(host.config)
    if not await asyncio.to_thread((directory / "cert.pem").exists):
        await _enroll_agent(host, host_name, controller_url, directory)
    return await asyncio.to_thread(_client_context, directory)


def _client_context(directory: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The CA is cloudd's own and pinned: the chain plus the serverAuth usage (which agents'
    # certificates lack) identify the controller, whatever name the agent dials it by.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(directory / "ca.pem"))
    ctx.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return ctx


async def _enroll_agent(host: ServiceHost, host_name: str, controller_url: str,
                        directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, host_name)]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    local = host.find(CertService)
    if local is not None:
        # The all-in-one: the agent is enrolled by the CA in its own process.
        cert_pem, ca_pem = await local.sign_agent_csr(host_name, csr), await local.fetch_ca()
    else:
        token = host.config.cert.join_token
        if not token:
            raise CertError("this agent has no certificate: make a join token with `cloudd manage "
                            "host enroll HOST` and set it as [cert] join_token")
        cert_pem, ca_pem = await _enroll_remote(controller_url, token, csr)
    await asyncio.to_thread(_save, directory, key_pem(key), cert_pem, ca_pem)
    LOG.info("enrolled: agent certificate for %s stored in %s", host_name, directory)


async def _enroll_remote(controller_url: str, token: str, csr: str) -> tuple[str, str]:
    try:
        _, expected_fp = enroll.split_join_token(token)
    except ValueError:
        raise CertError("[cert] join_token is not a join token") from None
    base = _https_base(controller_url)
    async with aiohttp.ClientSession() as session:
        # The CA certificate is public; it is trusted only if it is the one the token pins.
        async with session.get(f"{base}/ca.pem", ssl=False) as resp:
            resp.raise_for_status()
            ca_pem = await resp.text()
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        if not enroll.fingerprint_matches(expected_fp, ca.fingerprint(hashes.SHA256()).hex()):
            raise CertError("the controller's CA is not the one the join token names")
        verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        verify.check_hostname = False
        verify.load_verify_locations(cadata=ca_pem)
        async with session.post(f"{base}/enroll", json={"token": token, "csr": csr},
                                ssl=verify) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise CertError(f"enrolment refused ({resp.status}): {body.get('error')}")
    return str(body["certificate"]), ca_pem


def _https_base(controller_url: str) -> str:
    parts = urlsplit(controller_url)
    return urlunsplit(("https", parts.netloc, "", "", ""))


def _save(directory: Path, key: str, cert: str, ca: str) -> None:
    write_private(directory / "key.pem", key.encode())
    write_public(directory / "ca.pem", ca)
    write_public(directory / "cert.pem", cert)  # last: its presence means "enrolled"
