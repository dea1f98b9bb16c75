"""CertService (nova-cert): the CA, certificates for users/projects and agents, revocation, CRL.

The `certificates` table records every certificate issued (serial, subject, kind, user/project/host,
revoked); the CRL in ``<ca_path>/crl.pem`` is rewritten from it after each revocation.

Two CAs: the users' CA (os-certificates, EC2 bundles) and the hosts CA (``<ca_path>/hosts``),
which signs only agents' and controllers' certificates. The agent listener trusts the hosts CA
alone, and admits a connection only if its certificate's serial is recorded as kind 'agent' for
the host its subject names and is not revoked (`verified_agent`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cloudd.cert import enroll, records
from cloudd.cert.ca import (
    CLIENT_AUTH,
    SERVER_AUTH,
    CertificateAuthority,
    key_pem,
    load_hosts_ca,
    name,
    pem,
    serial_hex,
    utcnow,
    write_private,
    write_public,
)
from cloudd.cert.common import CertError as CertError
from cloudd.cert.common import HostsSigner
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService

LOG = logging.getLogger(__name__)


class DecryptionFailure(CertError):
    pass


class AgentLink(Protocol):
    """An agent's live connection, as far as revoking its host needs it."""

    async def close(self) -> None: ...


class CertService(HostsSigner):
    name = "cert"
    depends = ("database",)

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.ca: CertificateAuthority | None = None
        self.hosts_ca: CertificateAuthority | None = None
        self._preparing: asyncio.Task[CertificateAuthority] | None = None
        self.revoked_serials: frozenset[int] = frozenset()
        self._crl_lock = asyncio.Lock()  # Nova's revocation had no lock: a known race
        self._last_revocation_check = time.time()
        # The conductor's admitted agent connections by host name: the conductor hands its dict
        # over when it starts (cert sits below the conductor and does not import it).
        self.agent_links: Mapping[str, AgentLink] = {}

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def authority(self) -> CertificateAuthority:
        if self.ca is None:
            raise CertError("the certificate authority is not started")
        return self.ca

    @property
    def ca_path(self) -> Path:
        return Path(self.host.config.cert.ca_path)

    @property
    def hosts_authority(self) -> CertificateAuthority:
        if self.hosts_ca is None:
            raise CertError("the hosts certificate authority is not started")
        return self.hosts_ca

    async def start(self) -> None:
        # The agent listener needs the controller's certificate before it opens.
        self._preparing = asyncio.create_task(self._prepare(), name="cert: prepare the CA")
        await self.ready()
        self.host.periodic(self.host.config.service.report_interval, self._check_revoked_hosts,
                           "check revoked hosts", self)

    async def _prepare(self) -> CertificateAuthority:
        self.ca = await asyncio.to_thread(CertificateAuthority.load_or_create, self.ca_path)
        self.hosts_ca = await asyncio.to_thread(load_hosts_ca, self.ca_path)
        self.revoked_serials = await enroll.write_crl(self.db, self.ca)
        await self._issue_controller_cert()
        LOG.info("certificate authority at %s", self.ca_path)
        return self.ca

    async def ready(self) -> CertificateAuthority:
        if self._preparing is None:
            raise CertError("the certificate service is not started")
        return await asyncio.shield(self._preparing)

    async def stop(self) -> None:
        if self._preparing is not None:
            await asyncio.gather(self._preparing, return_exceptions=True)

    async def fetch_ca(self) -> str:
        return pem((await self.ready()).cert)

    async def fetch_hosts_ca(self) -> str:
        """The hosts CA certificate: what agents pin (a join token names its fingerprint)."""
        await self.ready()
        return pem(self.hosts_authority.cert)

    # ----- issuing --------------------------------------------------------------------------
    async def generate_x509_cert(self, user_id: str, project_id: str) -> tuple[str, str]:
        """nova-cert's generate_x509_cert: a new key and a certificate for user/project;
        returns (private_key_pem, cert_pem). Subject: Nova's "<project>-<user>-<time>" CN."""
        cfg = self.host.config.cert
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        subject = name(f"{project_id[:16]}-{user_id[:16]}-{stamp}", organization="cloudd users")

        def make() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
            key = rsa.generate_private_key(public_exponent=65537, key_size=cfg.key_size)
            cert = self.authority.sign(key.public_key(), subject, cfg.cert_days, usage=CLIENT_AUTH)
            return key, cert

        await self.ready()
        key, cert = await asyncio.to_thread(make)
        await self._record(cert, "user", user_id=user_id, project_id=project_id)
        return key_pem(key), pem(cert)

    async def sign_agent_csr(self, host_name: str, csr_pem: str) -> str:
        """An agent's client certificate for its CSR; the subject is the enrolled host name,
        whatever the CSR asked for."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise CertError(f"not a PEM certificate request: {exc}") from None
        if not csr.is_signature_valid:
            raise CertError("the certificate request's signature is invalid")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise CertError("only EC and RSA keys are accepted")
        days = self.host.config.cert.cert_days
        await self.ready()
        cert = await asyncio.to_thread(self.hosts_authority.sign, public_key,
                                       name(host_name, "cloudd hosts"), days, usage=CLIENT_AUTH)
        await self._record(cert, "agent", host=host_name)
        LOG.info("issued agent certificate %s for host %s", serial_hex(cert.serial_number), host_name)
        return pem(cert)

    async def _issue_controller_cert(self) -> None:
        """The agent and enrolment listeners' server certificate (a fresh one at each start),
        from the hosts CA, which agents pin."""
        cfg = self.host.config
        sans = sorted({"localhost", "127.0.0.1", cfg.default.my_ip, cfg.default.host,
                       socket.gethostname()} - {""})

        def make() -> x509.Certificate:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = self.hosts_authority.sign(key.public_key(), name(cfg.default.host or "controller"),
                                       cfg.cert.cert_days, usage=SERVER_AUTH, sans=sans)
            write_private(self.ca_path / "controller" / "key.pem", key_pem(key).encode())
            write_public(self.ca_path / "controller" / "cert.pem", pem(cert))
            return cert

        cert = await asyncio.to_thread(make)
        await self._record(cert, "controller", host=cfg.default.host)

    async def _record(self, cert: x509.Certificate, kind: str, *, user_id: str | None = None,
                      project_id: str | None = None, host: str | None = None) -> None:
        await records.record(
            self.db, serial=serial_hex(cert.serial_number), subject=cert.subject.rfc4514_string(),
            kind=kind, user_id=user_id, project_id=project_id, host=host, created_at=time.time(),
            expires_at=cert.not_valid_after_utc.timestamp())

    # ----- revocation -----------------------------------------------------------------------
    async def revoke_certs_by_user(self, user_id: str) -> int:
        return await self._revoke(user_id=user_id)

    async def revoke_certs_by_project(self, project_id: str) -> int:
        return await self._revoke(project_id=project_id)

    async def revoke_certs_by_user_and_project(self, user_id: str, project_id: str) -> int:
        return await self._revoke(user_id=user_id, project_id=project_id)

    async def revoke_certs_by_host(self, host_name: str) -> int:
        """Revoke a host's agent certificates and cut its live connection off now."""
        count = await self._revoke(agent_host=host_name)
        await self._cut_off({host_name})
        return count

    async def _revoke(self, *, user_id: str | None = None, project_id: str | None = None,
                      agent_host: str | None = None) -> int:
        ca = await self.ready()
        async with self._crl_lock:
            count = await records.mark_revoked(self.db, time.time(), user_id=user_id,
                                               project_id=project_id, agent_host=agent_host)
            self.revoked_serials = await enroll.write_crl(self.db, ca)
        return count

    async def write_crl(self) -> None:
        async with self._crl_lock:
            self.revoked_serials = await enroll.write_crl(self.db, await self.ready())

    async def _check_revoked_hosts(self) -> None:
        """Hosts revoked by another process (`cloudd manage`) lose their live link too."""
        since, self._last_revocation_check = self._last_revocation_check, time.time()
        hosts = await records.agent_hosts_revoked_since(self.db, since - 1.0)
        if hosts:
            await self.write_crl()
            await self._cut_off(hosts)

    async def _cut_off(self, hosts: set[str]) -> None:
        for host_name in hosts:
            peer = self.agent_links.get(host_name)
            if peer is not None:
                LOG.warning("host %s is revoked: closing its agent connection", host_name)
                await peer.close()

    # ----- TLS and EC2 ----------------------------------------------------------------------
    def server_ssl_context(self) -> ssl.SSLContext:
        """The agent listener's context: mutual TLS, a client certificate from the hosts CA
        required at the handshake (a user's certificate, from the other CA, fails there)."""
        ctx = self.enrolment_ssl_context()
        ctx.load_verify_locations(cafile=str(self.hosts_authority.cert_file))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def enrolment_ssl_context(self) -> ssl.SSLContext:
        """The enrolment listener's context: the controller's certificate only (hosts that come
        to enroll have none yet; their join token is their credential)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.ca_path / "controller" / "cert.pem",
                            self.ca_path / "controller" / "key.pem")
        return ctx

    async def verified_agent(self, peer_der: bytes | None) -> tuple[str | None, str]:
        """(host name, "") for an admitted agent; (None, why) otherwise. The handshake checked
        the chain to the hosts CA; this checks that the serial was issued by enrolment as an
        agent certificate for the host the subject names, and is not revoked."""
        if not peer_der:
            return None, "a client certificate from this cloud's host enrolment is required"
        cert = x509.load_der_x509_certificate(peer_der)
        serial = serial_hex(cert.serial_number)
        if cert.issuer != self.hosts_authority.cert.subject:
            return None, f"certificate {serial} is not a host certificate"
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        host_name = str(names[0].value) if names else ""
        issued = await records.get(self.db, serial)
        if issued is None or issued.kind != "agent" or not host_name or issued.host != host_name:
            return None, f"certificate {serial} was not issued to an enrolled host"
        if issued.revoked or cert.serial_number in self.revoked_serials:
            return None, f"certificate {serial} is revoked"
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = x509.ExtendedKeyUsage([])
        if CLIENT_AUTH not in usages:
            return None, "the certificate is not a client certificate"
        return host_name, ""

    async def decrypt_text(self, project_id: str, text: str) -> bytes:
        """nova-cert's decrypt_text: base64 in, PKCS#1 v1.5 with the CA key (one CA for every
        project: use_project_ca is not supported)."""
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailure(f"not base64: {exc}") from None
        try:
            return await asyncio.to_thread((await self.ready()).decrypt, data)
        except ValueError as exc:
            raise DecryptionFailure(str(exc)) from None
