"""Consoles and certificates of the Compute API.

- ``os-getVNCConsole`` server action (microversions 2.1-2.5, as in Nova) and
  ``POST /servers/{id}/remote-consoles`` (2.6 and later): a console URL with a fresh token.
- ``GET /os-console-auth-tokens/{token}`` (admin, 2.31 and later for novnc tokens, as Nova):
  the server and the VNC host:port a console URL's token opens; 404 for a token that opens
  nothing (unknown, expired, its server deleted or moved).
- ``os-certificates`` (nova-cert's REST face): ``POST`` makes a key and certificate for the
  caller's user and project, ``GET /os-certificates/root`` returns the CA certificate, any other
  id is 501. Nova removed the API with nova-cert in release 16 (Pike, whose top microversion was
  2.53); cloudd keeps serving it up to 2.53 and answers 410 Gone above, as Nova does for
  removed APIs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute.common import compute_api, context, load_server
from cloudd.api.compute.errors import (
    BadRequest,
    ComputeError,
    Conflict,
    NotFound,
    NotImplementedYet,
    read_json,
    validate,
)
from cloudd.api.compute.microversion import APIVersion, request_version
from cloudd.api.compute.server_models import Strict
from cloudd.api.keys import HOST_KEY
from cloudd.cert.service import CertService
from cloudd.compute.instances import Instance
from cloudd.conductor.service import HostUnavailable
from cloudd.consoleauth.service import ConsoleAuthService
from cloudd.consoleauth.tokens import TokenRefused
from cloudd.rpc import RpcError

CERTIFICATES_REMOVED_AFTER = "2.53"


class Gone(ComputeError):
    status = 410


class GetVncConsole(Strict):
    type: str


class RemoteConsole(Strict):
    protocol: str
    type: str


class RemoteConsoleBody(Strict):
    remote_console: RemoteConsole


async def _vnc_console_url(request: web.Request, row: Instance) -> str:
    """Ask the server's host where its VNC server listens, then make a token for it."""
    host = request.config_dict[HOST_KEY]
    consoleauth = host.find(ConsoleAuthService)
    if consoleauth is None or not host.config.vnc.enabled:
        raise ComputeError("VNC consoles are not enabled in this cloud")
    try:
        address = await compute_api(request).vnc_console(row)
    except HostUnavailable as exc:
        raise Conflict(f"Compute host is unavailable: {exc}") from None
    except RpcError as exc:
        if exc.code == "instance_not_found":
            raise NotFound(f"Instance {row.uuid} could not be found.") from None
        raise Conflict(f"Cannot get a console for instance {row.uuid}: {exc}") from None
    return await consoleauth.authorize_console(row, "novnc", address.host, address.port)


async def get_vnc_console(request: web.Request, args: Any) -> web.StreamResponse:
    """The os-getVNCConsole action (registered in server_actions.ACTIONS)."""
    if request_version(request).at_least("2.6"):
        raise NotFound("os-getVNCConsole was replaced by remote-consoles in microversion 2.6")
    body = validate(GetVncConsole, args)
    if body.type != "novnc":
        raise BadRequest(f"Invalid console type {body.type} (cloudd serves novnc only)")
    row = await load_server(request)
    context(request).require_act(row.project_id)
    url = await _vnc_console_url(request, row)
    return web.json_response({"console": {"type": "novnc", "url": url}})


async def create_remote_console(request: web.Request) -> web.StreamResponse:
    if not request_version(request).at_least("2.6"):
        raise NotFound("The resource could not be found.")
    body = validate(RemoteConsoleBody, await read_json(request)).remote_console
    if body.protocol != "vnc" or body.type != "novnc":
        raise BadRequest(f"Unavailable console type {body.protocol}/{body.type} "
                         "(cloudd serves vnc/novnc only)")
    row = await load_server(request)
    context(request).require_act(row.project_id)
    url = await _vnc_console_url(request, row)
    return web.json_response({"remote_console": {"protocol": "vnc", "type": "novnc", "url": url}})


# ----- os-certificates ----------------------------------------------------------------------
def _cert_service(request: web.Request) -> CertService:
    if request_version(request) > APIVersion.parse(CERTIFICATES_REMOVED_AFTER):
        raise Gone("os-certificates was removed with nova-cert (microversions after 2.53)")
    service = request.config_dict[HOST_KEY].find(CertService)
    if service is None:
        raise ComputeError("the certificate service is not running")
    return service


async def create_certificate(request: web.Request) -> web.StreamResponse:
    service = _cert_service(request)
    ctx = context(request)
    if not ctx.project_id:
        raise BadRequest("A project-scoped token is required")
    private_key, cert = await service.generate_x509_cert(ctx.user_id, ctx.project_id)
    return web.json_response({"certificate": {"data": cert, "private_key": private_key}})


async def show_certificate(request: web.Request) -> web.StreamResponse:
    service = _cert_service(request)
    if request.match_info["cert_id"] != "root":
        raise NotImplementedYet("Only root certificate can be retrieved.")
    return web.json_response({"certificate": {"data": await service.fetch_ca(), "private_key": None}})


async def show_console_auth_token(request: web.Request) -> web.Response:
    context(request).require_admin()
    if not request_version(request).at_least("2.31"):  # Nova: rdp-html5 tokens only, then
        raise BadRequest("The requested console type details are not accessible")
    token = request.match_info["token"]
    consoleauth = request.config_dict[HOST_KEY].find(ConsoleAuthService)
    try:
        if consoleauth is None:
            raise TokenRefused("no console service")
        found = await consoleauth.check_token(token)
    except TokenRefused:
        raise NotFound("The token is invalid or has expired") from None  # never echo it
    return web.json_response({"console": {
        "instance_uuid": found.instance_uuid, "host": found.host, "port": found.port,
        "internal_access_path": None}})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-console-auth-tokens/{{token}}", show_console_auth_token)
    app.router.add_post(f"{prefix}/servers/{{server_id}}/remote-consoles", create_remote_console)
    app.router.add_post(f"{prefix}/os-certificates", create_certificate)
    app.router.add_get(f"{prefix}/os-certificates/{{cert_id}}", show_certificate)
