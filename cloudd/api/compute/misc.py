"""os-services, os-availability-zone, /extensions (os-hypervisors: hypervisors.py)."""

from __future__ import annotations

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
from cloudd.scheduler.service import SchedulerService


def is_up(request: web.Request, service: hosts.Service) -> bool:
    down_time = request.config_dict[HOST_KEY].config.service.service_down_time
    seen = service.last_heard
    return not service.forced_down and seen is not None and time.time() - seen <= down_time


def _service_view(request: web.Request, service: hosts.Service) -> dict[str, Any]:
    version = request_version(request)
    view = {"id": service.uuid if version.at_least("2.53") else service.id,
            "binary": service.binary, "host": service.host,
            "zone": "internal" if service.topic != "compute" else "nova",
            "status": "disabled" if service.disabled else "enabled",
            "state": "up" if is_up(request, service) else "down",
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
    scheduler = request.config_dict[HOST_KEY].find(SchedulerService)
    if scheduler is not None:  # the next build here sees the change (other controllers: 1 s)
        scheduler.invalidate()
    fresh = await hosts.service_by_id(db, row.id)
    assert fresh is not None
    return web.json_response({"service": _service_view(request, fresh)})


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
            "available": is_up(request, service), "active": not service.disabled,
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
    app.router.add_get(f"{prefix}/os-availability-zone", availability_zones)
    app.router.add_get(f"{prefix}/os-availability-zone/detail", availability_zones_detail)
    app.router.add_get(f"{prefix}/extensions", extensions_index)
    app.router.add_get(f"{prefix}/extensions/{{alias}}", extension_show)
