"""/os-keypairs: import an OpenSSH public key or generate an ed25519 pair."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from typing import Annotated, Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import StringConstraints

from cloudd.api.compute import collection_paging
from cloudd.api.compute.common import context, database
from cloudd.api.compute.errors import BadRequest, Conflict, Forbidden, NotFound, parse_body
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_models import Strict
from cloudd.compute import keypair_api, keypairs, quota
from cloudd.compute.keypairs import KeyPair
from cloudd.db import DuplicateError

PAGING_SINCE = "2.35"  # Nova: limit and marker on the key pair list
_NAME = re.compile(r"^[a-zA-Z0-9 _-]+$")
_KEY_TYPES = {"ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
              "ecdsa-sha2-nistp521"}


class KeypairCreate(Strict):
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
    public_key: str | None = None
    type: Literal["ssh", "x509"] | None = None
    user_id: str | None = None


class KeypairCreateBody(Strict):
    keypair: KeypairCreate


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint: MD5 of the decoded key blob, colon-separated hex."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def check_public_key(public_key: str) -> str:
    text = public_key.strip()
    parts = text.split()
    if "\n" in text or len(parts) < 2 or parts[0] not in _KEY_TYPES:
        raise BadRequest("Keypair data is invalid: failed to parse the public key.")
    try:
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, binascii.Error, TypeError):
        raise BadRequest("Keypair data is invalid: failed to parse the public key.") from None
    return text


def generate() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return public + " Generated-by-cloudd", private


def _view(key: KeyPair, request: web.Request, full: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"name": key.name, "public_key": key.public_key,
                            "fingerprint": key.fingerprint}
    if request_version(request).at_least("2.2"):
        view["type"] = key.type
    if full:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime(key.created_at))
        view.update({"user_id": key.user_id, "deleted": False, "created_at": created,
                     "updated_at": None, "deleted_at": None, "id": key.id})
    return view


def _target_user(request: web.Request, user_id: str | None) -> str:
    ctx = context(request)
    if user_id and user_id != ctx.user_id:
        if not request_version(request).at_least("2.10"):
            raise BadRequest("user_id is not allowed at this microversion")
        ctx.require_admin()
        return user_id
    return ctx.user_id


async def index(request: web.Request) -> web.Response:
    """The user's key pairs by name; from 2.35 paged by `limit` and `marker` (a name)."""
    user_id = _target_user(request, request.query.get("user_id"))
    rows = await keypairs.list_for_user(database(request), user_id)
    body: dict[str, Any] = {}
    if request_version(request).at_least(PAGING_SINCE):
        rows = collection_paging.page(request, rows, _name)
        if links := collection_paging.next_links(request, rows, _name, "os-keypairs"):
            body["keypairs_links"] = links
    body["keypairs"] = [{"keypair": _view(r, request, False)} for r in rows]
    return web.json_response(body)


def _name(row: KeyPair) -> str:
    return row.name


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    version = request_version(request)
    spec = (await parse_body(request, KeypairCreateBody)).keypair
    if spec.type is not None and not version.at_least("2.2"):
        raise BadRequest("type is not allowed at this microversion")
    if not _NAME.match(spec.name):
        raise BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")
    user_id = _target_user(request, spec.user_id)
    private_key = None
    if spec.public_key is None:
        public_key, private_key = generate()
    else:
        public_key = check_public_key(spec.public_key)
    try:
        row = await keypair_api.create(
            database(request), name=spec.name, user_id=user_id, project_id=ctx.project_id or "",
            fingerprint=fingerprint(public_key), public_key=public_key,
            key_type=spec.type or "ssh", now=time.time())
    except DuplicateError:
        raise Conflict(f"Key pair '{spec.name}' already exists.") from None
    except quota.QuotaExceeded:
        raise Forbidden("Quota exceeded, too many key pairs.") from None
    view = _view(row, request, False)
    view["user_id"] = user_id
    if private_key is not None:
        view["private_key"] = private_key
    return web.json_response({"keypair": view}, status=201 if version.at_least("2.2") else 200)


async def _find(request: web.Request) -> KeyPair:
    user_id = _target_user(request, request.query.get("user_id"))
    name = request.match_info["name"]
    row = await keypairs.get(database(request), user_id, name)
    if row is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return row


async def show(request: web.Request) -> web.Response:
    return web.json_response({"keypair": _view(await _find(request), request, True)})


async def delete(request: web.Request) -> web.Response:
    row = await _find(request)
    await keypairs.delete(database(request), row.id)
    return web.Response(status=204 if request_version(request).at_least("2.2") else 202)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-keypairs", index)
    app.router.add_post(f"{prefix}/os-keypairs", create)
    app.router.add_get(f"{prefix}/os-keypairs/{{name}}", show)
    app.router.add_delete(f"{prefix}/os-keypairs/{{name}}", delete)
