"""`cloudd manage service ...` and `cloudd manage host ...`: the services table and compute hosts."""

from __future__ import annotations

import argparse
from typing import Any

from cloudd.compute import hosts, instances
from cloudd.config import CloudConfig
from cloudd.manage.common import ManageError, iso, print_table, with_db

COMPUTE_BINARY = hosts.COMPUTE_BINARY


async def _find_service(db: Any, host: str, binary: str) -> hosts.Service:
    row = await hosts.service_on(db, host, binary)
    if row is None:
        known = await hosts.services(db, order="host")
        names = ", ".join(f"{r.host}/{r.binary}" for r in known) or "none registered yet"
        raise ManageError(f"no service {binary} on host {host!r} (known: {names})")
    return row


async def service_list(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    rows = await hosts.services(db, order="host")
    down_time = cfg.service.service_down_time
    table = []
    for row in rows:
        status = "disabled" if row.disabled else "enabled"
        state = "up" if row.is_up(down_time) else "down"
        if row.forced_down:
            state = "down (forced)"
        table.append((row.id, row.host, row.binary, status, state, iso(row.updated_at),
                      row.disabled_reason or ""))
    print_table(("Id", "Host", "Binary", "Status", "State", "Updated At", "Disabled Reason"), table)
    return 0


async def service_enable(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    row = await _find_service(db, args.host, args.binary)
    await hosts.set_disabled(db, row.id, False, None)
    print(f"{args.binary} on {args.host}: enabled (the scheduler may place servers there)")
    return 0


async def service_disable(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    row = await _find_service(db, args.host, args.binary)
    await hosts.set_disabled(db, row.id, True, args.reason)
    print(f"{args.binary} on {args.host}: disabled ({args.reason or 'no reason given'});"
          " its servers keep running, no new ones are placed there")
    return 0


async def service_force_down(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    row = await _find_service(db, args.host, args.binary)
    down = args.action == "force-down"
    await hosts.set_forced_down(db, row.id, down)
    print(f"{args.binary} on {args.host}: " + ("forced down" if down else "no longer forced down"))
    return 0


# ----- hosts ----------------------------------------------------------------------------------
async def host_list(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    services = await hosts.services(db, binary=COMPUTE_BINARY, order="host")
    down_time = cfg.service.service_down_time
    table = []
    for service in services:
        nodes = await hosts.nodes(db, service_id=service.id)
        servers = await instances.count_on_host(db, service.host)
        zone = nodes[0].availability_zone if nodes else "-"
        address = nodes[0].host_ip if nodes else "-"
        table.append((service.host, address, zone, len(nodes),
                      "up" if service.is_up(down_time) else "down",
                      "disabled" if service.disabled else "enabled", servers))
    print_table(("Host", "Address", "Zone", "Nodes", "State", "Status", "Servers"), table)
    return 0


async def host_remove(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    service = await _find_service(db, args.host, COMPUTE_BINARY)
    servers = await instances.names_on_host(db, args.host)
    if servers and not args.force:
        names = ", ".join(f"{name} ({uuid})" for uuid, name in servers[:5])
        more = f" and {len(servers) - 5} more" if len(servers) > 5 else ""
        raise ManageError(f"host {args.host} still has {len(servers)} server(s): {names}{more}; "
                          "delete or migrate them first, or pass --force")
    if service.is_up(cfg.service.service_down_time) and not args.force:
        raise ManageError(f"the agent on {args.host} is still reporting; stop it first (it would"
                          " register again), or pass --force")
    async with db.transaction() as tx:
        if servers:
            # Their host is gone: they can only be deleted now, and ERROR tells users so.
            await instances.error_all_on_host(tx, args.host)
        await hosts.remove_host(tx, service.id)
    print(f"host {args.host} removed" + (f"; {len(servers)} server(s) set to ERROR" if servers else ""))
    return 0


async def host_enroll(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    from cloudd.cert.enroll import enroll_host

    try:
        token = await enroll_host(db, args.host, cfg.cert.ca_path)
    except ValueError as exc:
        raise ManageError(str(exc)) from None
    print(f"join token for {args.host} (one use, valid 24h; it pins this controller's hosts CA);"
          " set it as [cert] join_token in that host's agent configuration:")
    print(token)
    return 0


async def host_revoke(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    from cloudd.cert.enroll import revoke_host

    count = await revoke_host(db, cfg.cert.ca_path, args.host)
    print(f"revoked {count} agent certificate(s) of {args.host}; a running controller cuts its"
          " link off within a heartbeat interval (enroll it again to let it back)")
    return 0


def add_parsers(groups: Any) -> None:
    svc = groups.add_parser("service", help="compute services: list, enable, disable, force down")
    actions = svc.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every service with its status and state").set_defaults(
        func=with_db(service_list))
    for name, func, text in (
        ("enable", service_enable, "let the scheduler place servers on a host again"),
        ("disable", service_disable, "stop placing new servers on a host"),
        ("force-down", service_force_down, "mark a service down now (fencing, before evacuation)"),
        ("force-up", service_force_down, "undo force-down"),
    ):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("host")
        parser.add_argument("--binary", default=COMPUTE_BINARY, help="default: %(default)s")
        if name == "disable":
            parser.add_argument("--reason", default=None, help="shown in service list")
        parser.set_defaults(func=with_db(func))

    host = groups.add_parser("host", help="compute hosts: list, enroll, revoke, remove")
    host_actions = host.add_subparsers(dest="action", required=True)
    host_actions.add_parser("list", help="compute hosts, their state and servers").set_defaults(
        func=with_db(host_list))
    enroll = host_actions.add_parser("enroll", help="let a new compute host join (certificate)")
    enroll.add_argument("host")
    enroll.set_defaults(func=with_db(host_enroll))
    revoke = host_actions.add_parser("revoke", help="revoke a host's agent certificates")
    revoke.add_argument("host")
    revoke.set_defaults(func=with_db(host_revoke))
    remove = host_actions.add_parser(
        "remove", help="forget a host (refused while servers run there or its agent reports)")
    remove.add_argument("host")
    remove.add_argument("--force", action="store_true",
                        help="remove anyway; its servers are set to ERROR")
    remove.set_defaults(func=with_db(host_remove))
