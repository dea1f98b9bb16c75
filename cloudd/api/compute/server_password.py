"""os-server-password (Nova's): the password the guest posted to the metadata service, as it
posted it (encrypted with the server's key pair by cloud-init or cloudbase-init); the owner
reads it and clears it (the guest may then post a new one)."""

from __future__ import annotations

from aiohttp import web

from cloudd.api.compute.common import database, load_server, load_server_to_act
from cloudd.api.compute.errors import NotFound
from cloudd.compute import instances


async def show(request: web.Request) -> web.Response:
    row = await load_server(request)
    try:
        password = await instances.password_of(database(request), row.uuid)
    except instances.InstanceNotFound:
        raise NotFound(f"Instance {row.uuid} could not be found.") from None
    return web.json_response({"password": password})


async def clear(request: web.Request) -> web.Response:
    # Nova's policy: a member of the project (not a reader); a locked server's too.
    row = await load_server_to_act(request, lock_checked=False)
    try:
        await instances.clear_password(database(request), row.uuid)
    except instances.InstanceNotFound:
        raise NotFound(f"Instance {row.uuid} could not be found.") from None
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/servers/{{server_id}}/os-server-password", show)
    app.router.add_delete(f"{prefix}/servers/{{server_id}}/os-server-password", clear)
