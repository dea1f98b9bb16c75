"""The metadata service guests reach at http://169.254.169.254 (Nova's nova-api-metadata).

The agent redirects a guest's 169.254.169.254:80 traffic here without rewriting its source, so
the guest is known by its fixed IP: the address must be allocated to a live instance, and only
that instance's data is served — a guest can never read another project's (or guest's) data.
X-Forwarded-For is believed only from loopback (a local proxy), never from a guest.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cloudd.db.service import DatabaseService
from cloudd.listener import Listener
from cloudd.network import secgroups

if TYPE_CHECKING:
    from cloudd.core import ServiceHost

LOG = logging.getLogger(__name__)
EC2_KEYS = ["ami-id", "hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4",
            "mac", "placement/", "public-hostname", "public-ipv4", "public-keys/", "reservation-id",
            "security-groups"]
TRUSTED_PROXIES = {"127.0.0.1", "::1"}


class MetadataServer:
    def __init__(self, host: ServiceHost) -> None:
        self.host = host
        self.listener = Listener()
        self.port: int | None = None

    async def start(self) -> None:
        cfg = self.host.config.network
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.port = await self.listener.start(app, cfg.metadata_listen, cfg.metadata_port)
        LOG.info("metadata service on %s:%s", cfg.metadata_listen, self.port)

    async def stop(self) -> None:
        await self.listener.stop()

    def _guest_address(self, request: web.Request) -> str:
        remote = request.remote or ""
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and remote in TRUSTED_PROXIES:
            return forwarded.split(",")[0].strip()
        return remote

    async def _instance(self, address: str) -> dict[str, Any] | None:
        db = self.host.get(DatabaseService).db
        return await db.fetchrow(
            "SELECT i.*, f.address AS fixed_address, v.address AS mac,"
            " (SELECT min(fl.address) FROM floating_ips fl WHERE fl.fixed_ip_id = f.id) AS floating"
            " FROM fixed_ips f JOIN instances i ON i.uuid = f.instance_uuid"
            " LEFT JOIN virtual_interfaces v ON v.id = f.virtual_interface_id"
            " WHERE f.address = $1 AND f.allocated = 1 AND i.deleted = 0", address)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        instance = await self._instance(self._guest_address(request))
        if instance is None:
            raise web.HTTPNotFound(text="no instance has this address\n")
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return web.Response(text="latest\nopenstack\n")
        if parts[0] == "openstack":
            return await self._openstack(instance, parts[1:])
        return await self._ec2(instance, parts[1:])

    async def _openstack(self, instance: dict[str, Any], parts: list[str]) -> web.Response:
        if not parts:
            return web.Response(text="latest\n")
        leaf = "/".join(parts[1:])
        if leaf == "":
            return web.Response(text="meta_data.json\nuser_data\n")
        if leaf == "meta_data.json":
            return web.json_response(_openstack_meta(instance))
        if leaf == "user_data" and instance["user_data"]:
            return web.Response(body=base64.b64decode(instance["user_data"]))
        raise web.HTTPNotFound()

    async def _ec2(self, instance: dict[str, Any], parts: list[str]) -> web.Response:
        if not parts:
            return web.Response(text="meta-data/\nuser-data\n")
        if parts[0] == "user-data":
            if not instance["user_data"]:
                raise web.HTTPNotFound()
            return web.Response(body=base64.b64decode(instance["user_data"]))
        if parts[0] != "meta-data":
            raise web.HTTPNotFound()
        data = await self._ec2_meta(instance)
        key = "/".join(parts[1:])
        if key == "":
            return web.Response(text="\n".join(EC2_KEYS) + "\n")
        if key in data:
            return web.Response(text=str(data[key]))
        raise web.HTTPNotFound()

    async def _ec2_meta(self, instance: dict[str, Any]) -> dict[str, Any]:
        db = self.host.get(DatabaseService).db
        groups = await secgroups.groups_of_instance(db, instance["uuid"])
        flavor = json.loads(instance["flavor"]) if isinstance(instance["flavor"], str) else {}
        domain = self.host.config.network.dhcp_domain
        fqdn = f"{instance['hostname']}.{domain}" if domain else instance["hostname"]
        data: dict[str, Any] = {
            "ami-id": instance["image_ref"], "hostname": fqdn, "local-hostname": fqdn,
            "public-hostname": fqdn, "instance-id": f"i-{int(instance['id']):08x}",
            "instance-type": flavor.get("name", ""), "local-ipv4": instance["fixed_address"],
            "mac": instance["mac"] or "", "public-ipv4": instance["floating"] or "",
            "placement": "availability-zone", "placement/availability-zone":
                instance["availability_zone"] or "nova",
            "reservation-id": instance["reservation_id"],
            "security-groups": "\n".join(g["name"] for g in groups),
        }
        if instance["key_data"]:
            data["public-keys"] = f"0={instance['key_name']}"
            data["public-keys/0"] = "openssh-key"
            data["public-keys/0/openssh-key"] = instance["key_data"]
        return data


def _openstack_meta(instance: dict[str, Any]) -> dict[str, Any]:
    meta = instance["metadata"]
    keys = []
    if instance["key_data"]:
        keys.append({"name": instance["key_name"], "type": "ssh", "data": instance["key_data"]})
    return {
        "uuid": instance["uuid"], "name": instance["name"], "hostname": instance["hostname"],
        "project_id": instance["project_id"], "launch_index": instance["launch_index"],
        "availability_zone": instance["availability_zone"] or "nova",
        "meta": json.loads(meta) if isinstance(meta, str) else (meta or {}),
        "public_keys": {k["name"]: k["data"] for k in keys}, "keys": keys,
    }
