"""os-services, os-hypervisors, os-availability-zone, /extensions."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from cloudd.api.compute import views
from cloudd.api.compute.common import context, database
from cloudd.api.compute.errors import BadRequest, NotFound, parse_body
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_models import Strict
from cloudd.api.keys import HOST_KEY
from cloudd.compute import hosts


def _is_up(request: web.Request, service: hosts.Service) -> bool:
    down_time = request.config_dict[HOST_KEY].config.service.service_down_time
    seen = service.last_heard
    return not service.forced_down and seen is not None and time.time() - seen <= down_time


def _service_view(request: web.Request, service: hosts.Service) -> dict[str, Any]:
    version = request_version(request)
    view = {"id": service.uuid if version.at_least("2.53") else service.id,
            "binary": service.binary, "host": service.host,
            "zone": "internal" if service.topic != "compute" else "nova",
            "status": "disabled" if service.disabled else "enabled",
            "state": "up" if _is_up(request, service) else "down",
            "updated_at": views.usage_time(service.updated_at),
            "disabled_reason": service.disabled_reason}
    if version.at_least("2.11"):
        view["forced_down"] = service.forced_down
    return view


async def services_index(request: web.Request) -> web.Response:
    context(request).require_admin()
    rows = await hosts.services(database(request))
    return web.json_response({"services": [_service_view(request, r) for r in rows]})


class ServiceUpdate(Strict):
    status: str | None = None
    disabled_reason: str | None = None
    forced_down: bool | None = None


async def services_update(request: web.Request) -> web.Response:
    context(request).require_admin()
    if not request_version(request).at_least("2.53"):
        raise NotFound("Use PUT /os-services/{uuid} at microversion 2.53 or later.")
    body = await parse_body(request, ServiceUpdate)
    if body.status not in (None, "enabled", "disabled"):
        raise BadRequest("status must be enabled or disabled")
    if body.disabled_reason is not None and body.status != "disabled":
        raise BadRequest("disabled_reason needs status disabled")
    db = database(request)
    row = await hosts.service_by_uuid(db, request.match_info["id"])
    if row is None:
        raise NotFound(f"Service {request.match_info['id']} could not be found.")
    if body.status is not None:
        await hosts.set_disabled(db, row.id, body.status == "disabled", body.disabled_reason)
    if body.forced_down is not None:
        await hosts.set_forced_down(db, row.id, body.forced_down)
    fresh = await hosts.service_by_id(db, row.id)
    assert fresh is not None
    return web.json_response({"service": _service_view(request, fresh)})


def _hypervisor_view(request: web.Request, node: hosts.ComputeNode,
                     service: hosts.Service | None, detail: bool) -> dict[str, Any]:
    version = request_version(request)
    view: dict[str, Any] = {
        "id": node.uuid if version.at_least("2.53") else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if service and _is_up(request, service) else "down",
        "status": "disabled" if service and service.disabled else "enabled"}
    if not detail:
        return view
    cpu_info = node.cpu_info
    view.update({
        "vcpus": node.vcpus, "memory_mb": node.memory_mb, "local_gb": node.local_gb,
        "vcpus_used": node.vcpus_used, "memory_mb_used": node.memory_mb_used,
        "local_gb_used": node.local_gb_used, "hypervisor_type": node.hypervisor_type,
        "hypervisor_version": node.hypervisor_version,
        "free_ram_mb": node.memory_mb - node.memory_mb_used,
        "free_disk_gb": node.local_gb - node.local_gb_used, "current_workload": 0,
        "running_vms": node.running_vms, "disk_available_least": node.local_gb
        - node.local_gb_used, "host_ip": node.host_ip,
        "cpu_info": cpu_info if version.at_least("2.28") else json.dumps(cpu_info),
        "service": {"host": node.host, "id": (service.uuid if version.at_least("2.53")
                                              else service.id) if service else None,
                    "disabled_reason": service.disabled_reason if service else None}})
    return view


async def _hypervisors(request: web.Request) \
        -> list[tuple[hosts.ComputeNode, hosts.Service | None]]:
    context(request).require_admin()
    db = database(request)
    nodes = await hosts.nodes(db)
    services = {s.id: s for s in await hosts.services(db)}
    return [(n, services.get(n.service_id) if n.service_id is not None else None)
            for n in nodes]


async def hypervisors_index(request: web.Request) -> web.Response:
    pairs = await _hypervisors(request)
    return web.json_response({"hypervisors": [_hypervisor_view(request, n, s, False)
                                              for n, s in pairs]})


async def hypervisors_detail(request: web.Request) -> web.Response:
    pairs = await _hypervisors(request)
    return web.json_response({"hypervisors": [_hypervisor_view(request, n, s, True)
                                              for n, s in pairs]})


async def hypervisor_show(request: web.Request) -> web.Response:
    wanted = request.match_info["id"]
    for node, service in await _hypervisors(request):
        if wanted in (str(node.id), node.uuid):
            return web.json_response({"hypervisor": _hypervisor_view(request, node, service, True)})
    raise NotFound(f"Hypervisor with ID '{wanted}' could not be found.")


async def hypervisor_statistics(request: web.Request) -> web.Response:
    pairs = await _hypervisors(request)
    stats: dict[str, int] = {"count": len(pairs)}
    for key in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                "running_vms"):
        stats[key] = sum(int(getattr(n, key)) for n, _ in pairs)
    stats.update({"free_ram_mb": stats["memory_mb"] - stats["memory_mb_used"],
                  "free_disk_gb": stats["local_gb"] - stats["local_gb_used"],
                  "current_workload": 0, "disk_available_least": stats["local_gb"]
                  - stats["local_gb_used"]})
    return web.json_response({"hypervisor_statistics": stats})


async def availability_zones(request: web.Request) -> web.Response:
    zones = await hosts.availability_zones(database(request))
    names = sorted(set(zones) or {"nova"})
    return web.json_response({"availabilityZoneInfo": [
        {"zoneName": name, "zoneState": {"available": True}, "hosts": None} for name in names]})


async def availability_zones_detail(request: web.Request) -> web.Response:
    context(request).require_admin()
    db = database(request)
    zones: dict[str, dict[str, Any]] = {"internal": {}}
    zone_of = {n.host: n.availability_zone for n in await hosts.nodes(db)}
    for service in await hosts.services(db):
        zone = zone_of.get(service.host, "internal") if service.topic == "compute" \
            else "internal"
        zones.setdefault(zone, {}).setdefault(service.host, {})[service.binary] = {
            "available": _is_up(request, service), "active": not service.disabled,
            "updated_at": views.usage_time(service.updated_at)}
    return web.json_response({"availabilityZoneInfo": [
        {"zoneName": name, "zoneState": {"available": True}, "hosts": hosts or None}
        for name, hosts in sorted(zones.items())]})


_EXTENSIONS = (("Hosts", "os-hosts"), ("Consoles", "os-consoles"),
               ("AvailabilityZone", "os-availability-zone"), ("Keypairs", "os-keypairs"),
               ("FlavorExtraSpecs", "os-flavor-extra-specs"), ("Services", "os-services"),
               ("Hypervisors", "os-hypervisors"), ("Quotas", "os-quota-sets"),
               ("InstanceActions", "os-instance-actions"), ("ServerMetadata", "server-metadata"))


def _extension(name: str, alias: str) -> dict[str, Any]:
    return {"name": name, "alias": alias, "description": f"{name} support.",
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
            "updated": "2014-12-03T00:00:00Z", "links": []}


async def extensions_index(request: web.Request) -> web.Response:
    return web.json_response({"extensions": [_extension(n, a) for n, a in _EXTENSIONS]})


async def extension_show(request: web.Request) -> web.Response:
    for name, alias in _EXTENSIONS:
        if alias == request.match_info["alias"]:
            return web.json_response({"extension": _extension(name, alias)})
    raise NotFound(f"Extension {request.match_info['alias']} could not be found.")


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-services", services_index)
    app.router.add_put(f"{prefix}/os-services/{{id}}", services_update)
    app.router.add_get(f"{prefix}/os-hypervisors", hypervisors_index)
    app.router.add_get(f"{prefix}/os-hypervisors/detail", hypervisors_detail)
    app.router.add_get(f"{prefix}/os-hypervisors/statistics", hypervisor_statistics)
    app.router.add_get(f"{prefix}/os-hypervisors/{{id}}", hypervisor_show)
    app.router.add_get(f"{prefix}/os-availability-zone", availability_zones)
    app.router.add_get(f"{prefix}/os-availability-zone/detail", availability_zones_detail)
    app.router.add_get(f"{prefix}/extensions", extensions_index)
    app.router.add_get(f"{prefix}/extensions/{{alias}}", extension_show)
