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
from cloudd.api.service import HOST_KEY


def _is_up(request: web.Request, row: dict[str, Any]) -> bool:
    down_time = request.config_dict[HOST_KEY].config.service.service_down_time
    seen = row["last_seen_up"] or row["updated_at"]
    return not row["forced_down"] and seen is not None and time.time() - seen <= down_time


def _service_view(request: web.Request, row: dict[str, Any]) -> dict[str, Any]:
    version = request_version(request)
    view = {"id": row["uuid"] if version.at_least("2.53") else row["id"], "binary": row["binary"],
            "host": row["host"], "zone": "internal" if row["topic"] != "compute" else "nova",
            "status": "disabled" if row["disabled"] else "enabled",
            "state": "up" if _is_up(request, row) else "down",
            "updated_at": views.usage_time(row["updated_at"]),
            "disabled_reason": row["disabled_reason"]}
    if version.at_least("2.11"):
        view["forced_down"] = bool(row["forced_down"])
    return view


async def services_index(request: web.Request) -> web.Response:
    context(request).require_admin()
    rows = await database(request).fetch('SELECT * FROM services ORDER BY id')
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
    row = await db.fetchrow("SELECT * FROM services WHERE uuid = $1", request.match_info["id"])
    if row is None:
        raise NotFound(f"Service {request.match_info['id']} could not be found.")
    if body.status is not None:
        await db.execute("UPDATE services SET disabled = $1, disabled_reason = $2 WHERE id = $3",
                         int(body.status == "disabled"), body.disabled_reason, row["id"])
    if body.forced_down is not None:
        await db.execute("UPDATE services SET forced_down = $1 WHERE id = $2",
                         int(body.forced_down), row["id"])
    fresh = await db.fetchrow("SELECT * FROM services WHERE id = $1", row["id"])
    assert fresh is not None
    return web.json_response({"service": _service_view(request, fresh)})


def _hypervisor_view(request: web.Request, row: dict[str, Any], service: dict[str, Any] | None,
                     detail: bool) -> dict[str, Any]:
    version = request_version(request)
    view: dict[str, Any] = {
        "id": row["uuid"] if version.at_least("2.53") else row["id"],
        "hypervisor_hostname": row["hypervisor_hostname"],
        "state": "up" if service and _is_up(request, service) else "down",
        "status": "disabled" if service and service["disabled"] else "enabled"}
    if not detail:
        return view
    cpu_info = json.loads(row["cpu_info"] or "{}")
    view.update({
        "vcpus": row["vcpus"], "memory_mb": row["memory_mb"], "local_gb": row["local_gb"],
        "vcpus_used": row["vcpus_used"], "memory_mb_used": row["memory_mb_used"],
        "local_gb_used": row["local_gb_used"], "hypervisor_type": row["hypervisor_type"],
        "hypervisor_version": row["hypervisor_version"],
        "free_ram_mb": row["memory_mb"] - row["memory_mb_used"],
        "free_disk_gb": row["local_gb"] - row["local_gb_used"], "current_workload": 0,
        "running_vms": row["running_vms"], "disk_available_least": row["local_gb"]
        - row["local_gb_used"], "host_ip": row["host_ip"],
        "cpu_info": cpu_info if version.at_least("2.28") else json.dumps(cpu_info),
        "service": {"host": row["host"], "id": (service["uuid"] if version.at_least("2.53")
                                                else service["id"]) if service else None,
                    "disabled_reason": service["disabled_reason"] if service else None}})
    return view


async def _hypervisors(request: web.Request) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    context(request).require_admin()
    db = database(request)
    nodes = await db.fetch("SELECT * FROM compute_nodes ORDER BY id")
    services = {s["id"]: s for s in await db.fetch("SELECT * FROM services")}
    return [(n, services.get(n["service_id"])) for n in nodes]


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
        if wanted in (str(node["id"]), node["uuid"]):
            return web.json_response({"hypervisor": _hypervisor_view(request, node, service, True)})
    raise NotFound(f"Hypervisor with ID '{wanted}' could not be found.")


async def hypervisor_statistics(request: web.Request) -> web.Response:
    pairs = await _hypervisors(request)
    stats: dict[str, int] = {"count": len(pairs)}
    for key in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                "running_vms"):
        stats[key] = sum(int(n[key]) for n, _ in pairs)
    stats.update({"free_ram_mb": stats["memory_mb"] - stats["memory_mb_used"],
                  "free_disk_gb": stats["local_gb"] - stats["local_gb_used"],
                  "current_workload": 0, "disk_available_least": stats["local_gb"]
                  - stats["local_gb_used"]})
    return web.json_response({"hypervisor_statistics": stats})


async def availability_zones(request: web.Request) -> web.Response:
    zones = await database(request).fetch("SELECT DISTINCT availability_zone FROM compute_nodes")
    names = sorted({z["availability_zone"] for z in zones} or {"nova"})
    return web.json_response({"availabilityZoneInfo": [
        {"zoneName": name, "zoneState": {"available": True}, "hosts": None} for name in names]})


async def availability_zones_detail(request: web.Request) -> web.Response:
    context(request).require_admin()
    db = database(request)
    nodes = await db.fetch("SELECT host, availability_zone FROM compute_nodes")
    services = await db.fetch("SELECT * FROM services")
    zones: dict[str, dict[str, Any]] = {"internal": {}}
    zone_of = {n["host"]: n["availability_zone"] for n in nodes}
    for service in services:
        zone = zone_of.get(service["host"], "internal") if service["topic"] == "compute" \
            else "internal"
        zones.setdefault(zone, {}).setdefault(service["host"], {})[service["binary"]] = {
            "available": _is_up(request, service), "active": not service["disabled"],
            "updated_at": views.usage_time(service["updated_at"])}
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
