"""The agent's TLS with the controller: ``agent_ssl_context`` returns the client context for
``wss://``, enrolling first when the agent has no certificate for its host name yet — with
``[cert] join_token`` over the network (the controller's enrolment listener,
``cloudd.cert.enrolment_listener``: ``GET /ca.pem``, whose fingerprint the token pins, then ``POST
/enroll`` ``{"token", "csr"}``), or directly from the hosts CA when both run in one process (the
all-in-one, ``cloudd.cert.common.HostsSigner``). Files live in ``<state_dir>/agent-cert/`` (key
0600).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloudd.cert.ca import key_pem, write_private, write_public
from cloudd.cert.common import CertError, HostsSigner, fingerprint_matches, split_join_token
from cloudd.config import CloudConfig
from cloudd.core import ServiceHost

LOG = logging.getLogger(__name__)


def agent_cert_dir(cfg: CloudConfig) -> Path:
    return Path(cfg.default.state_dir) / "agent-cert"


async def agent_ssl_context(host: ServiceHost, host_name: str, controller_url: str
                            ) -> ssl.SSLContext:
    """The agent's client context (its certificate, the pinned hosts CA), enrolling first if it
    has no certificate for `host_name` (or, in the all-in-one, none from its own controller)."""
    directory = agent_cert_dir(host.config)
    local = host.find(HostsSigner)
    expected_ca = await local.fetch_hosts_ca() if local is not None else None
    if not await asyncio.to_thread(_enrolled_as, directory, host_name, expected_ca):
        await _enroll_agent(host, host_name, controller_url, directory)
    return await asyncio.to_thread(client_context, directory)


def _enrolled_as(directory: Path, host_name: str, expected_ca: str | None) -> bool:
    try:
        cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
        ca_pem = (directory / "ca.pem").read_text()
    except (FileNotFoundError, ValueError):
        return False
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not names or names[0].value != host_name:
        return False
    return expected_ca is None or ca_pem == expected_ca


def client_context(directory: Path) -> ssl.SSLContext:
    """The agent's TLS client context from its enrolment files (blocking: file reads)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The hosts CA is cloudd's own and pinned: the chain plus the serverAuth usage (which
    # agents' certificates lack) identify the controller, whatever name the agent dials it by.
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
    local = host.find(HostsSigner)
    if local is not None:
        # The all-in-one: the agent is enrolled by the CA in its own process.
        cert_pem, ca_pem = await local.sign_agent_csr(host_name, csr), await local.fetch_hosts_ca()
    else:
        token = host.config.cert.join_token
        if not token:
            raise CertError(f"this agent has no certificate for host {host_name}: make a join token"
                            f" with `cloudd manage host enroll {host_name}` on the controller and"
                            " set it as [cert] join_token")
        base = enrolment_base(controller_url, host.config.rpc.enroll_port)
        cert_pem, ca_pem = await _enroll_remote(base, token, csr)
    await asyncio.to_thread(_save, directory, key_pem(key), cert_pem, ca_pem)
    LOG.info("enrolled: agent certificate for %s stored in %s", host_name, directory)


async def _enroll_remote(base: str, token: str, csr: str) -> tuple[str, str]:
    try:
        _, expected_fp = split_join_token(token)
    except ValueError:
        raise CertError("[cert] join_token is not a join token") from None
    async with aiohttp.ClientSession() as session:
        # The CA certificate is public; it is trusted only if it is the one the token pins.
        async with session.get(f"{base}/ca.pem", ssl=False) as resp:
            resp.raise_for_status()
            ca_pem = await resp.text()
        try:
            ca = x509.load_pem_x509_certificate(ca_pem.encode())
        except ValueError:
            raise CertError(f"{base}/ca.pem is not a certificate") from None
        if not fingerprint_matches(expected_fp, ca.fingerprint(hashes.SHA256()).hex()):
            raise CertError("the controller's hosts CA is not the one the join token names")
        verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        verify.check_hostname = False
        verify.load_verify_locations(cadata=ca_pem)
        async with session.post(f"{base}/enroll", json={"token": token, "csr": csr},
                                ssl=verify) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(body, dict):
                why = body.get("error") if isinstance(body, dict) else body
                raise CertError(f"enrolment refused ({resp.status}): {why}")
    return str(body["certificate"]), ca_pem


def enrolment_base(controller_url: str, enroll_port: int) -> str:
    """wss://ctl:8780/agent -> https://ctl:<enroll_port>: the enrolment listener of that controller."""
    hostname = urlsplit(controller_url).hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return f"https://{hostname}:{enroll_port}"


def _save(directory: Path, key: str, cert: str, ca: str) -> None:
    write_private(directory / "key.pem", key.encode())
    write_public(directory / "ca.pem", ca)
    write_public(directory / "cert.pem", cert)  # last: its presence means "enrolled"
