"""/os-simple-tenant-usage: hours and sizes of the instances that ran in a period.

Computed from the instance rows (deleted ones included) as Nova's simple_tenant_usage does: an
instance counts when it was launched before the period's end and not terminated before its
start; its hours are the overlap of [launched_at, terminated_at or end] with the period.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cloudd.api.compute import views
from cloudd.api.compute.common import context, database, parse_limit, parse_time
from cloudd.api.compute.errors import BadRequest
from cloudd.api.compute.microversion import request_version
from cloudd.compute import instances
from cloudd.compute.instances import Instance

PAGING_SINCE = "2.40"


def _stamp(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _period(request: web.Request) -> tuple[float, float]:
    query = request.query
    start = parse_time(query["start"], "start") if query.get("start") else time.time()
    end = parse_time(query["end"], "end") if query.get("end") else time.time()
    if not start < end:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return start, end


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "t", "yes", "y", "on")


async def _instances(request: web.Request, start: float, end: float,
                     project_id: str | None) -> list[Instance]:
    rows = await instances.launched_rows(database(request), start, end, project_id)
    query = request.query
    if request_version(request).at_least(PAGING_SINCE):
        if "marker" in query:
            ids = [r.uuid for r in rows]
            if query["marker"] not in ids:
                raise BadRequest(f"Marker {query['marker']} could not be found.")
            rows = rows[ids.index(query["marker"]) + 1:]
        if "limit" in query:
            rows = rows[:parse_limit(query)]
    return rows


def _server_usage(row: Instance, start: float, end: float, now: float) -> dict[str, Any]:
    # launched_rows reads launched instances only: launched_at is set
    launched, terminated = row.launched_at or 0.0, row.terminated_at
    overlap = min(terminated or end, end) - max(launched, start)
    state = "terminated" if terminated else row.vm_state
    return {
        "instance_id": row.uuid, "name": row.name, "hours": max(overlap, 0) / 3600.0,
        "memory_mb": row.memory_mb, "local_gb": row.root_gb + row.ephemeral_gb,
        "vcpus": row.vcpus, "tenant_id": row.project_id,
        "flavor": row.flavor.name, "started_at": _stamp(launched),
        "ended_at": _stamp(terminated), "state": state,
        "uptime": int((terminated if terminated else now) - launched),
    }


def _tenant_usages(rows: list[Instance], start: float, end: float,
                   detailed: bool) -> dict[str, dict[str, Any]]:
    now = time.time()
    usages: dict[str, dict[str, Any]] = {}
    for row in rows:
        server = _server_usage(row, start, end, now)
        usage = usages.setdefault(row.project_id, {
            "tenant_id": row.project_id, "total_local_gb_usage": 0.0,
            "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0, "total_hours": 0.0,
            "start": _stamp(start), "stop": _stamp(end)})
        hours = server["hours"]
        usage["total_hours"] += hours
        usage["total_local_gb_usage"] += server["local_gb"] * hours
        usage["total_vcpus_usage"] += server["vcpus"] * hours
        usage["total_memory_mb_usage"] += server["memory_mb"] * hours
        if detailed:
            usage.setdefault("server_usages", []).append(server)
    return usages


def _next_links(request: web.Request, rows: list[Instance], path: str) -> list[dict[str, str]]:
    if not request_version(request).at_least(PAGING_SINCE) or "limit" not in request.query \
            or not rows or len(rows) != parse_limit(request.query):
        return []
    params = {k: v for k, v in request.query.items() if k != "marker"}
    params["marker"] = rows[-1].uuid
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return [{"rel": "next", "href": f"{views.base_url(request)}/v2.1/{path}?{query}"}]


async def index(request: web.Request) -> web.Response:
    context(request).require_admin()
    start, end = _period(request)
    rows = await _instances(request, start, end, None)
    usages = _tenant_usages(rows, start, end, _truthy(request.query.get("detailed")))
    body: dict[str, Any] = {"tenant_usages": list(usages.values())}
    if links := _next_links(request, rows, "os-simple-tenant-usage"):
        body["tenant_usages_links"] = links
    return web.json_response(body)


async def show(request: web.Request) -> web.Response:
    project_id = request.match_info["project_id"]
    context(request).require_read(project_id)
    start, end = _period(request)
    rows = await _instances(request, start, end, project_id)
    usage = _tenant_usages(rows, start, end, True).get(project_id, {})
    body: dict[str, Any] = {"tenant_usage": usage}
    if links := _next_links(request, rows, f"os-simple-tenant-usage/{project_id}"):
        body["tenant_usage_links"] = links
    return web.json_response(body)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-simple-tenant-usage", index)
    app.router.add_get(f"{prefix}/os-simple-tenant-usage/{{project_id}}", show)
