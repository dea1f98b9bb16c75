"""cloudd's certificate authority on disk (nova-cert's CA folder, done with `cryptography`).

Layout under ``ca_path`` (Nova's names): ``cacert.pem``, ``private/cakey.pem`` (0600 in a 0700
directory), ``crl.pem`` and ``newcerts/<SERIAL>.pem``. The CA key is RSA 3072 with SHA-256
signatures rather than Nova's 1024-bit MD5: RSA because EC2 image bundles are encrypted to the CA
key with PKCS#1 v1.5 (``decrypt``).

The hosts CA (``<ca_path>/hosts``, same layout, an EC key: it decrypts nothing) signs only the
agents' and the controller's certificates, so that no user certificate can ever pass for a host's.

Everything here is blocking file and CPU work: callers run it in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_KEY_BITS = 3072
CA_DAYS = 3650
CRL_DAYS = 365


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def name(common_name: str, organization: str = "cloudd") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def serial_hex(serial: int) -> str:
    return f"{serial:X}"


def write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only, from the first byte (no window at 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def write_public(path: Path, data: str) -> None:
    """Replace `path` atomically, so a reader never sees half a CRL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class CertificateAuthority:
    path: Path
    key: CaKey
    cert: x509.Certificate

    @property
    def cert_file(self) -> Path:
        return self.path / "cacert.pem"

    @property
    def crl_file(self) -> Path:
        return self.path / "crl.pem"

    @classmethod
    def load_or_create(cls, path: str | Path, *, common_name: str = "cloudd CA",
                       elliptic: bool = False) -> CertificateAuthority:
        """Nova's ensure_ca_filesystem: make the CA the first time, load it afterwards."""
        path = Path(path)
        key_file, cert_file = path / "private" / "cakey.pem", path / "cacert.pem"
        if cert_file.exists() and key_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
            return cls(path, loaded, x509.load_pem_x509_certificate(cert_file.read_bytes()))
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        key: CaKey = (ec.generate_private_key(ec.SECP384R1()) if elliptic
                      else rsa.generate_private_key(public_exponent=65537, key_size=CA_KEY_BITS))
        now = utcnow()
        subject = name(common_name)
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        # Key first: a crash in between leaves no CA certificate without its key.
        write_private(key_file, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        write_public(cert_file, pem(cert))
        return cls(path, key, cert)

    def sign(self, public_key: CertificateIssuerPublicKeyTypes, subject: x509.Name, days: int,
             *, usage: x509.ObjectIdentifier, sans: Iterable[str] = ()) -> x509.Certificate:
        """An end-entity certificate for `public_key`; `usage` is its one extended key usage,
        so an agent's (client) certificate can never serve as the controller's (server)."""
        now = utcnow()
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        alt_names = [_general_name(item) for item in sans]
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        write_public(self.path / "newcerts" / f"{serial_hex(cert.serial_number)}.pem", pem(cert))
        return cert

    def write_crl(self, revoked: Iterable[tuple[int, dt.datetime]]) -> x509.CertificateRevocationList:
        now = utcnow()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now).next_update(now + dt.timedelta(days=CRL_DAYS)))
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        crl = builder.sign(self.key, hashes.SHA256())
        write_public(self.crl_file, crl.public_bytes(serialization.Encoding.PEM).decode())
        return crl

    def decrypt(self, ciphertext: bytes) -> bytes:
        """nova-cert's decrypt_text: `openssl rsautl -decrypt` (PKCS#1 v1.5) with the CA key."""
        if not isinstance(self.key, rsa.RSAPrivateKey):
            raise ValueError("this CA's key cannot decrypt")
        return self.key.decrypt(ciphertext, padding.PKCS1v15())

    def fingerprint(self) -> str:
        """sha256 of the CA certificate (DER), hex: what a join token pins."""
        return self.cert.fingerprint(hashes.SHA256()).hex()


def _general_name(item: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(item))
    except ValueError:
        return x509.DNSName(item)


def load_hosts_ca(ca_path: str | Path) -> CertificateAuthority:
    """The hosts CA under `ca_path` (made the first time): it signs agents and controllers only."""
    return CertificateAuthority.load_or_create(Path(ca_path) / "hosts",
                                               common_name="cloudd hosts CA", elliptic=True)


SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
