"""os-hypervisors (admin): list, detail, show, statistics, and Nova's per-host calls
below 2.53 (search, servers) and 2.88 (uptime, asked of the host's agent)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cloudd.api.compute import collection_paging
from cloudd.api.compute.common import compute_api, context, database
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.misc import is_up
from cloudd.compute import hosts, instances
from cloudd.compute.instance_fields import guest_name
from cloudd.conductor.service import HostUnavailable
from cloudd.rpc import RpcError

Pair = tuple[hosts.ComputeNode, hosts.Service | None]
PAGING_SINCE = "2.33"


def _hypervisor_view(request: web.Request, node: hosts.ComputeNode,
                     service: hosts.Service | None, detail: bool) -> dict[str, Any]:
    version = request_version(request)
    view: dict[str, Any] = {
        "id": node.uuid if version.at_least("2.53") else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if service and is_up(request, service) else "down",
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
        -> list[Pair]:
    context(request).require_admin()
    db = database(request)
    nodes = await hosts.nodes(db)
    services = {s.id: s for s in await hosts.services(db)}
    return [(n, services.get(n.service_id) if n.service_id is not None else None)
            for n in nodes]


async def _listing(request: web.Request, detail: bool) -> web.Response:
    """From 2.33 paged by `limit` and `marker` (the id a view shows: its uuid from 2.53)."""
    pairs = await _hypervisors(request)
    body: dict[str, Any] = {}
    if request_version(request).at_least(PAGING_SINCE):
        key = _uuid_key if request_version(request).at_least("2.53") else _id_key
        pairs = collection_paging.page(request, pairs, key)
        path = "os-hypervisors/detail" if detail else "os-hypervisors"
        if links := collection_paging.next_links(request, pairs, key, path):
            body["hypervisors_links"] = links
    body["hypervisors"] = [_hypervisor_view(request, n, s, detail) for n, s in pairs]
    return web.json_response(body)


def _id_key(pair: Pair) -> str:
    return str(pair[0].id)


def _uuid_key(pair: Pair) -> str:
    return pair[0].uuid


async def hypervisors_index(request: web.Request) -> web.Response:
    return await _listing(request, detail=False)


async def hypervisors_detail(request: web.Request) -> web.Response:
    return await _listing(request, detail=True)


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


async def _matching(request: web.Request) -> list[Pair]:
    """The hypervisors whose name contains the path's pattern (Nova's LIKE %pattern%); 404
    when none does. Nova removed these calls at 2.53 (the list's query parameters replace
    them)."""
    if request_version(request).at_least("2.53"):
        raise NotFound("The resource could not be found.")
    pattern = request.match_info["pattern"]
    found = [(n, s) for n, s in await _hypervisors(request) if pattern in n.hypervisor_hostname]
    if not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return found


async def hypervisor_search(request: web.Request) -> web.Response:
    return web.json_response({"hypervisors": [_hypervisor_view(request, n, s, False)
                                              for n, s in await _matching(request)]})


async def hypervisor_servers(request: web.Request) -> web.Response:
    """Each matching hypervisor with its servers (name: the guest's, as Nova's instance.name);
    `servers` is left out of a hypervisor without any, as in Nova."""
    views = []
    for node, service in await _matching(request):
        view = _hypervisor_view(request, node, service, False)
        on_node = [row for row in await instances.on_host(database(request), node.host)
                   if row.node == node.hypervisor_hostname]
        if on_node:
            view["servers"] = [{"name": guest_name(row), "uuid": row.uuid} for row in on_node]
        views.append(view)
    return web.json_response({"hypervisors": views})


async def hypervisor_uptime(request: web.Request) -> web.Response:
    """The host's `uptime` line, asked of its agent (Nova removed the call at 2.88, where show
    carries it); a host that is down or away is Nova's 400."""
    if request_version(request).at_least("2.88"):
        raise NotFound("The resource could not be found.")
    wanted = request.match_info["id"]
    for node, service in await _hypervisors(request):
        if wanted in (str(node.id), node.uuid):
            if service is None or not is_up(request, service):
                raise BadRequest(f"Compute service of {node.host} is unavailable at this time.")
            try:
                uptime = await compute_api(request).host_uptime(node.host)
            except HostUnavailable:
                raise BadRequest(f"Compute service of {node.host} is unavailable at this "
                                 "time.") from None
            except RpcError as exc:  # the host failed, or answered out of bounds
                raise Conflict(f"Host {node.host} could not give its uptime: {exc}") from None
            view = _hypervisor_view(request, node, service, False)
            return web.json_response({"hypervisor": {**view, "uptime": uptime}})
    raise NotFound(f"Hypervisor with ID '{wanted}' could not be found.")


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-hypervisors", hypervisors_index)
    app.router.add_get(f"{prefix}/os-hypervisors/detail", hypervisors_detail)
    app.router.add_get(f"{prefix}/os-hypervisors/statistics", hypervisor_statistics)
    app.router.add_get(f"{prefix}/os-hypervisors/{{pattern}}/search", hypervisor_search)
    app.router.add_get(f"{prefix}/os-hypervisors/{{pattern}}/servers", hypervisor_servers)
    app.router.add_get(f"{prefix}/os-hypervisors/{{id}}/uptime", hypervisor_uptime)
    app.router.add_get(f"{prefix}/os-hypervisors/{{id}}", hypervisor_show)
