"""GET /servers/{id}/diagnostics (admin): a running guest's counters, asked of its host.

Below 2.48 the body is the hypervisor's own flat map, as Nova's libvirt driver writes it
(``cpu0_time``, ``memory``, ``memory-actual``, ``vda_read``, ``vnet0_rx``...); from 2.48 it is
Nova's standard form (state, driver, uptime, and CPU, memory, NIC and disk details).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from cloudd.api.compute.common import compute_api, context, load_server, refusals_mapped
from cloudd.api.compute.errors import Conflict, NotFound
from cloudd.api.compute.microversion import request_version
from cloudd.compute.instances import Instance
from cloudd.rpc import RpcError
from cloudd.rpc.contracts.compute import Diagnostics


def legacy_view(diagnostics: Diagnostics) -> dict[str, int | None]:
    """The pre-2.48 map, keyed as Nova's libvirt driver keys it."""
    view: dict[str, int | None] = {}
    for cpu in diagnostics.cpu_details:
        view[f"cpu{cpu.id}_time"] = cpu.time
    for disk in diagnostics.disk_details:
        view.update({f"{disk.device}_read_req": disk.read_requests,
                     f"{disk.device}_read": disk.read_bytes,
                     f"{disk.device}_write_req": disk.write_requests,
                     f"{disk.device}_write": disk.write_bytes,
                     f"{disk.device}_errors": disk.errors_count})
    for nic in diagnostics.nic_details:
        for field in ("rx", "rx_packets", "rx_errors", "rx_drop",
                      "tx", "tx_packets", "tx_errors", "tx_drop"):
            attribute = field + "_octets" if field in ("rx", "tx") else field
            view[f"{nic.device}_{field}"] = getattr(nic, attribute)
    view["memory"] = None if diagnostics.memory_max_mb is None \
        else diagnostics.memory_max_mb * 1024
    view.update({f"memory-{key}": value for key, value in diagnostics.memory_stats.items()})
    return view


def standard_view(row: Instance, diagnostics: Diagnostics) -> dict[str, Any]:
    """Nova's 2.48 form; uptime counts from launched_at, as Nova's libvirt driver does."""
    uptime = None if row.launched_at is None else max(0, int(time.time() - row.launched_at))
    return {
        "state": diagnostics.state, "driver": diagnostics.driver,
        "hypervisor": diagnostics.hypervisor, "hypervisor_os": diagnostics.hypervisor_os,
        "uptime": uptime, "config_drive": bool(row.config_drive),
        "num_cpus": len(diagnostics.cpu_details), "num_nics": len(diagnostics.nic_details),
        "num_disks": len(diagnostics.disk_details),
        "memory_details": {"maximum": diagnostics.memory_max_mb,
                           "used": diagnostics.memory_used_mb},
        "cpu_details": [cpu.model_dump() for cpu in diagnostics.cpu_details],
        "nic_details": [nic.model_dump(exclude={"device"}) for nic in diagnostics.nic_details],
        "disk_details": [disk.model_dump(exclude={"device"})
                         for disk in diagnostics.disk_details],
    }


async def show(request: web.Request) -> web.Response:
    context(request).require_admin()
    row = await load_server(request)
    try:
        diagnostics = await refusals_mapped(row, compute_api(request).diagnostics(row))
    except RpcError as exc:
        if exc.code == "instance_not_found":
            raise NotFound(f"Instance {row.uuid} could not be found.") from None
        raise Conflict(f"Cannot 'get_diagnostics' instance {row.uuid}: {exc}") from None
    if request_version(request).at_least("2.48"):
        return web.json_response(standard_view(row, diagnostics))
    return web.json_response(legacy_view(diagnostics))


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/servers/{{server_id}}/diagnostics", show)
