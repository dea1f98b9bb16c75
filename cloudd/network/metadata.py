"""The metadata service guests reach at http://169.254.169.254 (Nova's nova-api-metadata).

A guest's request never reaches this service directly: the agent on its host redirects
169.254.169.254:80 to its own metadata proxy (``metadata_proxy.py``), which knows the guest by the
bridge and source address it came from (anti-spoofing makes that address honest) and forwards the
request with ``X-Instance-ID``, ``X-Tenant-ID`` and ``X-Instance-ID-Signature`` =
HMAC-SHA256(shared secret, instance id), as Nova's neutron-metadata-proxy does. Only a request with
a valid signature is served, and only that instance's data. ``X-Forwarded-For`` is believed only
from the addresses in ``[network] metadata_trusted_proxies`` (none by default); anything else —
a guest or a process on the controller that reaches this port — gets 403.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import os
import re
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cloudd.compute import instances
from cloudd.compute.instances import Instance
from cloudd.config import CloudConfig
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.listener import Listener, read_bounded
from cloudd.network import secgroups, store
from cloudd.network.metadata_signing import PROXY_HOST_HEADER, host_key, sign

if TYPE_CHECKING:
    from cloudd.core import ServiceHost

LOG = logging.getLogger(__name__)
EC2_KEYS = ["ami-id", "hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4",
            "mac", "placement/", "public-hostname", "public-ipv4", "public-keys/", "reservation-id",
            "security-groups"]
SECRET_FILE = "metadata-proxy-secret"


def shared_secret(cfg: CloudConfig) -> str:
    """The configured secret, else the one generated at the first start (blocking: to_thread)."""
    if cfg.network.metadata_proxy_shared_secret:
        return cfg.network.metadata_proxy_shared_secret
    path = Path(cfg.default.state_dir or ".") / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:  # O_EXCL: two processes starting at once keep the first one's secret
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


class MetadataServer:
    def __init__(self, host: ServiceHost) -> None:
        self.host = host
        self.listener = Listener()
        self.port: int | None = None
        self.secret = ""
        self.trusted: set[str] = set()

    async def start(self) -> None:
        cfg = self.host.config.network
        self.secret = await asyncio.to_thread(shared_secret, self.host.config)
        self.trusted = cfg.trusted_proxies()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        app.router.add_post("/openstack/{version}/password", self.post_password)
        self.port = await self.listener.start(app, cfg.metadata_listen, cfg.metadata_port)
        if cfg.metadata_port == 0:  # tests: the hosts' proxies are told the port really bound
            cfg.metadata_port = self.port
        LOG.info("metadata service on %s:%s", cfg.metadata_listen, self.port)

    async def stop(self) -> None:
        await self.listener.stop()

    async def _signed_instance(self, request: web.Request) -> store.MetadataInstance:
        instance_id = request.headers.get("X-Instance-ID", "")
        signature = request.headers.get("X-Instance-ID-Signature", "")
        proxy_host = request.headers.get(PROXY_HOST_HEADER, "")
        expected = sign(host_key(self.secret, proxy_host), instance_id)
        if not self.secret or not hmac.compare_digest(expected.encode(), signature.encode()):
            LOG.warning("metadata request from %s with a bad signature for %r", request.remote,
                        instance_id[:64])
            raise web.HTTPForbidden(text="invalid instance id signature\n")
        try:
            instance = await store.metadata_instance_by_uuid(
                self._db(), str(uuid.UUID(instance_id)))
        except ValueError:
            instance = None
        if instance is None:
            raise web.HTTPNotFound(text="no such instance\n")
        if request.headers.get("X-Tenant-ID") != instance.instance.project_id:
            raise web.HTTPForbidden(text="the tenant does not own this instance\n")
        # The guest's own host, or the gateway host of its network, proxies for it; nobody else.
        if proxy_host not in (instance.instance.host, instance.network_host):
            LOG.warning("host %r signed a metadata request for %s, which it does not serve",
                        proxy_host[:64], instance.instance.uuid)
            raise web.HTTPForbidden(text="this host does not serve this instance\n")
        return instance

    async def _instance_of(self, request: web.Request) -> store.MetadataInstance:
        if "X-Instance-ID-Signature" in request.headers:
            return await self._signed_instance(request)
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and request.remote in self.trusted:
            # The rightmost entry is the one the trusted proxy added; the rest came from the client.
            address = forwarded.split(",")[-1].strip()
            instance = await store.metadata_instance_by_address(self._db(), address)
            if instance is None:
                raise web.HTTPNotFound(text="no instance has this address\n")
            return instance
        raise web.HTTPForbidden(text="metadata is served only through the host's metadata proxy\n")

    def _db(self) -> Database:
        return self.host.get(DatabaseService).db

    async def handle(self, request: web.Request) -> web.StreamResponse:
        instance = await self._instance_of(request)
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return web.Response(text="latest\nopenstack\n")
        if parts[0] == "openstack":
            return await self._openstack(instance, parts[1:])
        return await self._ec2(instance, parts[1:])

    async def post_password(self, request: web.Request) -> web.Response:
        """Nova's password handler (2013-04-04 and later): the guest posts its encrypted
        password once (at most 256 bytes); a second post is a 409."""
        served = await self._instance_of(request)
        if not _has_password(request.match_info["version"]):
            raise web.HTTPNotFound()
        body = await read_bounded(request, instances.MAX_PASSWORD)
        if body is None:
            raise web.HTTPBadRequest(text="Request is too large.\n")
        try:
            password = body.decode()
        except UnicodeDecodeError:
            raise web.HTTPBadRequest(text="The password must be text.\n") from None
        if not await instances.set_password_once(self._db(), served.instance.uuid, password):
            raise web.HTTPConflict(text="Password already set.\n")
        return web.Response(text="")

    async def _openstack(self, served: store.MetadataInstance, parts: list[str]) -> web.Response:
        instance = served.instance
        if not parts:
            return web.Response(text="latest\n")
        leaf = "/".join(parts[1:])
        if leaf == "":
            listed = ["meta_data.json", "user_data", "vendor_data.json"]
            return web.Response(text="\n".join(
                [*listed, *(["password"] if _has_password(parts[0]) else [])]) + "\n")
        if leaf == "password" and _has_password(parts[0]):
            return web.Response(text=await instances.password_of(self._db(), instance.uuid))
        if leaf == "meta_data.json":
            return web.json_response(_openstack_meta(instance))
        if leaf == "vendor_data.json":  # Nova always serves it (empty without vendor data)
            return web.json_response({})
        if leaf == "user_data" and instance.user_data:
            return web.Response(body=base64.b64decode(instance.user_data))
        raise web.HTTPNotFound()

    async def _ec2(self, served: store.MetadataInstance, parts: list[str]) -> web.Response:
        if not parts:
            return web.Response(text="meta-data/\nuser-data\n")
        user_data = served.instance.user_data
        if parts[0] == "user-data":
            if not user_data:
                raise web.HTTPNotFound()
            return web.Response(body=base64.b64decode(user_data))
        if parts[0] != "meta-data":
            raise web.HTTPNotFound()
        data = await self._ec2_meta(served)
        key = "/".join(parts[1:])
        if key == "":
            return web.Response(text="\n".join(EC2_KEYS) + "\n")
        if key in data:
            return web.Response(text=str(data[key]))
        raise web.HTTPNotFound()

    async def _ec2_meta(self, served: store.MetadataInstance) -> dict[str, Any]:
        instance = served.instance
        db = self.host.get(DatabaseService).db
        groups = await secgroups.groups_of_instance(db, instance.uuid)
        domain = self.host.config.network.dhcp_domain
        fqdn = f"{instance.hostname}.{domain}" if domain else instance.hostname
        data: dict[str, Any] = {
            "ami-id": instance.image_ref, "hostname": fqdn, "local-hostname": fqdn,
            "public-hostname": fqdn, "instance-id": f"i-{instance.id:08x}",
            "instance-type": instance.flavor.name, "local-ipv4": served.fixed_address,
            "mac": served.mac or "", "public-ipv4": served.floating or "",
            "placement": "availability-zone", "placement/availability-zone":
                instance.availability_zone or "nova",
            "reservation-id": instance.reservation_id,
            "security-groups": "\n".join(g.name for g in groups),
        }
        if instance.key_data:
            data["public-keys"] = f"0={instance.key_name}"
            data["public-keys/0"] = "openssh-key"
            data["public-keys/0/openssh-key"] = instance.key_data
        return data


def _has_password(version: str) -> bool:
    """Nova serves the password from the 2013-04-04 metadata version on."""
    return version == "latest" or (re.fullmatch(r"\d{4}-\d{2}-\d{2}", version) is not None
                                   and version >= "2013-04-04")


def _openstack_meta(instance: Instance) -> dict[str, Any]:
    keys = []
    if instance.key_data:
        keys.append({"name": instance.key_name, "type": "ssh", "data": instance.key_data})
    return {
        "uuid": instance.uuid, "name": instance.name, "hostname": instance.hostname,
        "project_id": instance.project_id, "launch_index": instance.launch_index,
        "availability_zone": instance.availability_zone or "nova",
        "meta": dict(instance.metadata),
        "public_keys": {k["name"]: k["data"] for k in keys}, "keys": keys,
    }
