"""The certificate authority: created once with a private key only its owner reads, certificates
that chain to it (checked by the openssl command line too), a CRL that lists what was revoked, and
nova-cert's decrypt_text."""

from __future__ import annotations

import base64
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from harness import requires

from cloudd.cert.service import CertService, DecryptionFailure
from cloudd.config import CloudConfig, resolve_paths
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService


@pytest.fixture
async def cert(db_url: str, tmp_path: Path) -> AsyncIterator[CertService]:
    cfg = CloudConfig()
    cfg.default.state_dir = str(tmp_path)
    cfg.database.connection = db_url
    cfg.cert.key_size = 2048  # issued user keys; the CA's own key stays RSA 3072
    host = ServiceHost(resolve_paths(cfg))
    host.add(DatabaseService(host))
    service = CertService(host)
    host.add(service)
    await host.start()
    await service.ready()
    try:
        yield service
    finally:
        await host.stop()


def openssl_verify(tmp_path: Path, ca: Path, cert_pem: str, crl: Path | None = None) -> str:
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(cert_pem)
    openssl = requires.installed("openssl", "scripts/install-deps.sh")
    args = [openssl, "verify", "-purpose", "sslclient", "-CAfile", str(ca)]
    if crl is not None:
        args += ["-crl_check", "-CRLfile", str(crl)]
    proc = subprocess.run([*args, str(leaf)], capture_output=True, text=True)
    return proc.stdout + proc.stderr


async def test_ca_is_made_once_with_a_private_key(cert: CertService) -> None:
    ca_path = cert.ca_path
    key = ca_path / "private" / "cakey.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((ca_path / "private").stat().st_mode) == 0o700
    ca = x509.load_pem_x509_certificate((ca_path / "cacert.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = ca.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size >= 3072
    assert ca.signature_hash_algorithm is not None
    assert ca.signature_hash_algorithm.name == "sha256"
    assert (ca_path / "crl.pem").exists()
    # A restart loads the same CA rather than making a new one.
    from cloudd.cert.ca import CertificateAuthority

    again = CertificateAuthority.load_or_create(ca_path)
    assert again.cert == ca


async def test_user_certificates_chain_to_the_ca_until_revoked(cert: CertService,
                                                              tmp_path: Path) -> None:
    key_pem, cert_pem = await cert.generate_x509_cert("user1", "project1")
    issued = x509.load_pem_x509_certificate(cert_pem.encode())
    issued.verify_directly_issued_by(cert.authority.cert)
    assert "project1-user1-" in issued.subject.rfc4514_string()
    assert "PRIVATE KEY" in key_pem
    ca_file = cert.ca_path / "cacert.pem"
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca_file, cert_pem, cert.authority.crl_file)
    _, other_pem = await cert.generate_x509_cert("user2", "project1")
    _, third_pem = await cert.generate_x509_cert("user3", "project2")

    assert await cert.revoke_certs_by_user("user1") == 1
    crl = x509.load_pem_x509_crl(cert.authority.crl_file.read_bytes())
    assert crl.is_signature_valid(cert.authority.key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(issued.serial_number) is not None
    assert "revoked" in openssl_verify(tmp_path, ca_file, cert_pem, cert.authority.crl_file)
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca_file, other_pem, cert.authority.crl_file)

    assert await cert.revoke_certs_by_project("project1") == 1
    assert "revoked" in openssl_verify(tmp_path, ca_file, other_pem, cert.authority.crl_file)
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca_file, third_pem, cert.authority.crl_file)
    rows = await cert.db.fetch("SELECT user_id, revoked FROM certificates WHERE kind = 'user'"
                               " ORDER BY user_id")
    assert [(r["user_id"], r["revoked"]) for r in rows] == [("user1", 1), ("user2", 1), ("user3", 0)]


async def test_decrypt_text_uses_the_ca_key(cert: CertService) -> None:
    public = cert.authority.cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    secret = b"bundle key and iv"
    text = base64.b64encode(public.encrypt(secret, padding.PKCS1v15())).decode()
    assert await cert.decrypt_text("any-project", text) == secret
    with pytest.raises(DecryptionFailure):
        await cert.decrypt_text("any-project", "not base64!")
    # (A wrong ciphertext of the right length decrypts to random bytes: OpenSSL's implicit
    # rejection, the defence against Bleichenbacher-style oracles. A wrong length fails.)
    with pytest.raises(DecryptionFailure):
        await cert.decrypt_text("any-project", base64.b64encode(b"x" * 10).decode())
