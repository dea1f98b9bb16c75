"""os-certificates through the Compute API (nova-cert's REST face)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from harness.console import ConsoleCloud as Cloud


async def test_create_returns_a_key_and_a_certificate_from_the_root(cloud: Cloud) -> None:
    token, _ = await cloud.user_token("certs-project")
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-certificates", token)
    assert code == 200, body
    cert = x509.load_pem_x509_certificate(body["certificate"]["data"].encode())
    key = serialization.load_pem_private_key(body["certificate"]["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]

    code, root, _ = await cloud.call("GET", "/compute/v2.1/os-certificates/root", token)
    assert code == 200 and root["certificate"]["private_key"] is None
    ca = x509.load_pem_x509_certificate(root["certificate"]["data"].encode())
    cert.verify_directly_issued_by(ca)
    project_id = await cloud.db.fetchval("SELECT id FROM projects WHERE name = 'certs-project'")
    row = await cloud.db.fetchrow("SELECT project_id, kind FROM certificates WHERE serial = $1",
                                  f"{cert.serial_number:X}")
    assert row == {"project_id": project_id, "kind": "user"}

    code, body, _ = await cloud.call("GET", "/compute/v2.1/os-certificates/other", token)
    assert code == 501, body
    code, _, _ = await cloud.call("POST", "/compute/v2.1/os-certificates", "not-a-token")
    assert code == 401
