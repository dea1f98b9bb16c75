"""Response views per microversion (tempest's compute response schemas are the contract)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from aiohttp import web

from cloudd.api.compute.microversion import APIVersion
from cloudd.api.keys import HOST_KEY
from cloudd.compute.flavors import Flavor
from cloudd.compute.instance_fields import guest_name
from cloudd.compute.instances import Instance, InstanceFault
from cloudd.identity.policy import RequestContext
from cloudd.vocab import states

PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}


def base_url(request: web.Request) -> str:
    """`http://ctl:8774/compute`: the configured public URL, else the one the client used."""
    configured = str(request.config_dict[HOST_KEY].config.api.public_url).rstrip("/")
    origin = configured or f"{request.scheme}://{request.host}"
    return f"{origin}/compute"


def links(request: web.Request, collection: str, item_id: str) -> list[dict[str, str]]:
    base = base_url(request)
    return [{"rel": "self", "href": f"{base}/v2.1/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{item_id}"}]


def isotime(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp or 0))


def usage_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + (
        f".{int((timestamp % 1) * 1_000_000):06d}")


def host_id(project_id: str, host: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def flavor_ref_view(request: web.Request, row: Instance, version: APIVersion) -> dict[str, Any]:
    flavor = row.flavor
    if version.at_least("2.47"):
        return {"vcpus": flavor.vcpus, "ram": flavor.memory_mb, "disk": flavor.root_gb,
                "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
                "original_name": flavor.name, "extra_specs": dict(flavor.extra_specs)}
    return {"id": flavor.flavorid, "links": links(request, "flavors", flavor.flavorid)[1:]}


def image_ref_view(request: web.Request, row: Instance) -> dict[str, Any] | str:
    if not row.image_ref:
        return ""
    return {"id": row.image_ref, "links": links(request, "images", row.image_ref)[1:]}


def server_brief(request: web.Request, row: Instance) -> dict[str, Any]:
    return {"id": row.uuid, "name": row.name, "links": links(request, "servers", row.uuid)}


def server_basic(request: web.Request, row: Instance, version: APIVersion,
                 addresses: dict[str, Any] | None = None,
                 tags: list[str] | None = None) -> dict[str, Any]:
    """The keys every server view has (the whole view of PUT and rebuild below 2.75);
    ``addresses`` by network label (cloudd.api.network.addresses.server_addresses), ``tags``
    the server's (server_tags.tags_of)."""
    status = states.api_status(row.vm_state, row.task_state)
    view: dict[str, Any] = {
        **server_brief(request, row), "status": status,
        "image": image_ref_view(request, row), "flavor": flavor_ref_view(request, row, version),
        "user_id": row.user_id, "tenant_id": row.project_id,
        "created": isotime(row.created_at), "updated": isotime(row.updated_at),
        "metadata": dict(row.metadata), "addresses": addresses or {},
        "hostId": host_id(row.project_id, row.host), "OS-DCF:diskConfig": "MANUAL",
        "accessIPv4": row.access_ip_v4 or "", "accessIPv6": row.access_ip_v6 or "",
    }
    if status in PROGRESS_STATUSES:
        view["progress"] = row.progress
    if version.at_least("2.9"):
        view["locked"] = row.locked
    if version.at_least("2.19"):
        view["description"] = row.description
    if version.at_least("2.26"):
        view["tags"] = list(tags or [])
    if version.at_least("2.73"):
        view["locked_reason"] = row.locked_reason
    return view


def server_detail(request: web.Request, row: Instance, version: APIVersion,
                  ctx: RequestContext, fault: InstanceFault | None,
                  host_status: str | None = None, addresses: dict[str, Any] | None = None,
                  security_groups: list[dict[str, str]] | None = None,
                  tags: list[str] | None = None) -> dict[str, Any]:
    view = server_basic(request, row, version, addresses, tags)
    view.update({
        "key_name": row.key_name, "security_groups": security_groups or [],
        "OS-SRV-USG:launched_at": usage_time(row.launched_at),
        "OS-SRV-USG:terminated_at": usage_time(row.terminated_at),
        "OS-EXT-AZ:availability_zone": row.availability_zone or "nova",
        "OS-EXT-STS:task_state": row.task_state, "OS-EXT-STS:vm_state": row.vm_state,
        "OS-EXT-STS:power_state": row.power_state,
        "os-extended-volumes:volumes_attached": [], "config_drive": row.config_drive,
    })
    if ctx.is_admin:
        view.update({
            "OS-EXT-SRV-ATTR:host": row.host,
            "OS-EXT-SRV-ATTR:instance_name": guest_name(row),
            "OS-EXT-SRV-ATTR:hypervisor_hostname": row.node,
        })
        if version.at_least("2.3"):
            view.update({
                "OS-EXT-SRV-ATTR:reservation_id": row.reservation_id,
                "OS-EXT-SRV-ATTR:launch_index": row.launch_index,
                "OS-EXT-SRV-ATTR:hostname": row.hostname,
                "OS-EXT-SRV-ATTR:kernel_id": row.kernel_id,
                "OS-EXT-SRV-ATTR:ramdisk_id": row.ramdisk_id,
                "OS-EXT-SRV-ATTR:root_device_name": None,
                "OS-EXT-SRV-ATTR:user_data": row.user_data,
            })
        if version.at_least("2.16") and host_status is not None:
            view["host_status"] = host_status
    if fault is not None and view["status"] in ("ERROR", "DELETED"):
        view["fault"] = fault_view(fault, ctx)
    return view


def fault_view(fault: InstanceFault, ctx: RequestContext) -> dict[str, Any]:
    view: dict[str, Any] = {"code": fault.code, "message": fault.message,
                            "created": isotime(fault.created_at)}
    # Nova shows the details (a traceback) to admins, and to everyone for non-500 faults.
    if fault.details and (ctx.is_admin or fault.code != 500):
        view["details"] = fault.details
    return view


def flavor_view(request: web.Request, flavor: Flavor, version: APIVersion,
                detail: bool) -> dict[str, Any]:
    flavorid = flavor.flavorid
    view: dict[str, Any] = {"id": flavorid, "name": flavor.name,
                            "links": links(request, "flavors", flavorid)}
    if version.at_least("2.55"):
        view["description"] = flavor.description
    if not detail:
        return view
    swap: int | str = flavor.swap if flavor.swap or version.at_least("2.75") else ""
    view.update({
        "ram": flavor.memory_mb, "vcpus": flavor.vcpus, "disk": flavor.root_gb, "swap": swap,
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor,
    })
    if version.at_least("2.61"):
        view["extra_specs"] = dict(flavor.extra_specs)
    return view
