"""Server migrations (Nova's 2.22-2.24, admin): the live migrations in progress of a server.
cloudd has no live migration, so none is ever in progress: the list is empty, a migration is
not found, and force_complete and abort are refused as Nova refuses them for a server that is
not migrating (409). Below each call's microversion: 404, as Nova's versioned routes."""

from __future__ import annotations

from aiohttp import web

from cloudd.api.compute.common import context, load_server
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.compute.instances import Instance


async def _server(request: web.Request, since: str) -> Instance:
    if not request_version(request).at_least(since):
        raise NotFound("The resource could not be found.")
    context(request).require_admin()
    return await load_server(request)


def _not_migrating(action: str, row: Instance) -> Conflict:
    return Conflict(f"Cannot '{action}' instance {row.uuid} while it is in task_state "
                    f"{row.task_state}" if row.task_state else
                    f"Cannot '{action}' instance {row.uuid} while it is in vm_state "
                    f"{row.vm_state}")


async def index(request: web.Request) -> web.Response:
    await _server(request, "2.23")
    return web.json_response({"migrations": []})


async def show(request: web.Request) -> web.Response:
    row = await _server(request, "2.23")
    raise NotFound(f"In-progress live migration {request.match_info['migration_id']} is not "
                   f"found for server {row.uuid}.")


async def action(request: web.Request) -> web.Response:
    row = await _server(request, "2.22")
    body = await read_json(request)
    if not isinstance(body, dict) or list(body) != ["force_complete"]:
        raise BadRequest("The only migration action is force_complete.")
    raise _not_migrating("live_migrate_force_complete", row)


async def delete(request: web.Request) -> web.Response:
    row = await _server(request, "2.24")
    raise _not_migrating("live_migrate_abort", row)


def add_routes(app: web.Application, prefix: str) -> None:
    base = f"{prefix}/servers/{{server_id}}/migrations"
    app.router.add_get(base, index)
    app.router.add_get(f"{base}/{{migration_id}}", show)
    app.router.add_delete(f"{base}/{{migration_id}}", delete)
    app.router.add_post(f"{base}/{{migration_id}}/action", action)
