"""``GET /healthz/hosts`` (admin only): each compute host's own health, asked of its agent.

`cloudd manage status` has a database but no agent link, so it asks the controller, which asks
every registered compute host ``compute.host_health`` over the agent websocket, all at once and
each with a short timeout. A host whose agent is not connected (or does not answer) is reported
as such; the agents' facts are in the reply as they gave them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cloudd.api.keys import HOST_KEY
from cloudd.compute import hosts
from cloudd.conductor.service import ConductorService, HostUnavailable
from cloudd.db.service import DatabaseService
from cloudd.identity.token_cache import validate_token
from cloudd.rpc import RpcError
from cloudd.rpc.contracts.compute import HostQuery

ASK_TIMEOUT = 8.0  # the agent's own libvirt check gives up after 5s


async def ask_host(conductor: ConductorService, host: str) -> dict[str, Any]:
    """The host's report as JSON, with ``connected`` and ``error`` saying how the asking went."""
    try:
        compute = await conductor.compute_client(host)
        report = await compute.host_health(HostQuery(), timeout=ASK_TIMEOUT)
    except HostUnavailable:
        return {"host": host, "connected": False, "error": "agent not connected"}
    except (RpcError, TimeoutError, ConnectionError) as exc:
        return {"host": host, "connected": True,
                "error": f"no health report: {' '.join(str(exc).split()) or type(exc).__name__}"}
    return {**report.model_dump(mode="json"), "connected": True, "error": ""}


async def hosts_health(request: web.Request) -> web.Response:
    host = request.app[HOST_KEY]
    db = host.get(DatabaseService).db
    token = await validate_token(db, request.headers.get("X-Auth-Token", ""))
    if token is None:
        return web.json_response({"error": "an admin token (X-Auth-Token) is required"}, status=401)
    if "admin" not in {role.name for role in token.roles}:
        return web.json_response({"error": "admin only"}, status=403)
    rows = await hosts.services(db, binary=hosts.COMPUTE_BINARY, order="host")
    conductor = host.get(ConductorService)
    reports = await asyncio.gather(*(ask_host(conductor, row.host) for row in rows))
    for row, report in zip(rows, reports, strict=True):
        report["disabled"] = row.disabled
    return web.json_response({"hosts": reports})
