"""CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair: the caller's key pairs, the
same rows (and quota) as the Compute API's /os-keypairs."""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloudd.api.compute import keypairs as compute_keypairs
from cloudd.api.compute.errors import BadRequest
from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.xml import Ec2Error, invalid
from cloudd.compute import keypair_api, keypairs, quota
from cloudd.compute.keypairs import KeyPair
from cloudd.db import DuplicateError

_NAME = re.compile(r"^[a-zA-Z0-9 _.-]{1,255}$")


def _name(req: Ec2Request) -> str:
    name = req.params.required("KeyName")
    if not _NAME.match(name):
        raise invalid(f"Value ({name}) for parameter KeyName is invalid.")
    return name


def _generate_rsa() -> tuple[str, str]:
    """(OpenSSH public key, PEM private key): EC2 clients expect an RSA PEM key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return public + " Generated-by-cloudd", private


async def _insert(req: Ec2Request, name: str, public_key: str) -> KeyPair:
    try:
        return await keypair_api.create(
            req.db, name=name, user_id=req.context.user_id, project_id=req.project_id,
            fingerprint=compute_keypairs.fingerprint(public_key), public_key=public_key,
            key_type="ssh", now=time.time())
    except DuplicateError:
        raise Ec2Error("InvalidKeyPair.Duplicate",
                       f"The keypair '{name}' already exists.") from None
    except quota.QuotaExceeded:
        raise Ec2Error("ResourceLimitExceeded", "Quota exceeded, too many key pairs.") from None


async def create_key_pair(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    name = _name(req)
    public_key, private_key = _generate_rsa()
    row = await _insert(req, name, public_key)
    return {"keyName": name, "keyFingerprint": row.fingerprint, "keyMaterial": private_key,
            "keyPairId": f"key-{row.id:08x}"}


async def import_key_pair(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    name = _name(req)
    material = req.params.required("PublicKeyMaterial")
    try:
        text = base64.b64decode(material, validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = material  # some clients send the OpenSSH line itself
    try:
        public_key = compute_keypairs.check_public_key(text)
    except BadRequest:
        raise Ec2Error("InvalidKeyPair.Format", "Key is not in valid OpenSSH public key "
                       "format") from None
    row = await _insert(req, name, public_key)
    return {"keyName": name, "keyFingerprint": row.fingerprint,
            "keyPairId": f"key-{row.id:08x}"}


async def describe_key_pairs(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    rows = await keypairs.list_for_user(req.db, req.context.user_id)
    wanted = req.params.strings("KeyName")
    by_name = {row.name: row for row in rows}
    for name in wanted:
        if name not in by_name:
            raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")
    if wanted:
        rows = [by_name[name] for name in wanted]
    filters = req.params.filters()
    items = []
    for row in rows:
        fields = {"key-name": row.name, "fingerprint": row.fingerprint}
        if all(filter_matches(v, fields.get(k)) for k, v in filters.items()):
            items.append({"keyPairId": f"key-{row.id:08x}", "keyName": row.name,
                          "keyFingerprint": row.fingerprint, "keyType": _key_type(row)})
    return {"keySet": items}


def _key_type(row: KeyPair) -> str:
    return "ed25519" if row.public_key.startswith("ssh-ed25519") else "rsa"


async def delete_key_pair(req: Ec2Request) -> dict[str, Any]:
    """True even when there is no such key (Nova and AWS both)."""
    req.require_act()
    name = req.params.required("KeyName")
    await keypairs.delete_by_name(req.db, req.context.user_id, name)
    return {"return": True}
