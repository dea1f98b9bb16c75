"""The host's metadata proxy (Nova's nova-api-metadata behind neutron-metadata-proxy).

The agent redirects guests' 169.254.169.254:80 here (``firewall.render_nat``). The redirect keeps
the guest's source address and makes the destination the address of the bridge it came in on, so
the pair (network whose gateway is the local address, source address) names one guest of this
host's own network state; anti-spoofing makes the source address honest. The request goes on to
the controller's metadata service with the instance id signed with the shared secret; the guest's
own headers (a forged ``X-Forwarded-For`` or ``X-Instance-ID``) are never forwarded.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from yarl import URL

from cloudd.listener import Listener, read_bounded
from cloudd.network.metadata_signing import PROXY_HOST_HEADER, host_key, sign
from cloudd.rpc.contracts.network import DhcpHost, HostNetworkState

if TYPE_CHECKING:
    from collections.abc import Callable

LOG = logging.getLogger(__name__)
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=30)
PASSED_BACK = ("Content-Type",)
# The most a guest may post (its password: Nova takes 256 bytes, the controller checks that).
POSTED_LIMIT = 256


def guest_at(state: HostNetworkState, local: str, remote: str) -> DhcpHost | None:
    """The guest of ``state`` at ``remote`` on the network whose gateway is ``local``."""
    for net in state.networks:
        if not net.gateway_host or net.gateway != local:
            continue
        if ipaddress.ip_address(remote) not in ipaddress.ip_network(net.cidr):
            return None
        return next((h for h in net.hosts if h.ip == remote and h.instance_uuid), None)
    return None


class MetadataProxy:
    """One per agent; listens on all addresses, serves only requests that arrive on a gateway."""

    def __init__(self, host: str, current_state: Callable[[], HostNetworkState | None],
                 secret: str = "") -> None:
        self.host = host
        self.current_state = current_state
        # [network] metadata_proxy_shared_secret given to this agent; else the state brings the key.
        self.configured_key = host_key(secret, host) if secret else ""
        self.listener = Listener()
        self.port: int | None = None
        self._session: aiohttp.ClientSession | None = None

    async def ensure_started(self, port: int) -> int | None:
        """Listen once (on the first state with networks); the port bound, None if none can be."""
        if self.port is None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", self.handle)
            # The one thing a guest sends: its password (the controller checks it again).
            app.router.add_post("/openstack/{version}/password", self.handle)
            try:
                self.port = await self.listener.start(app, "0.0.0.0", port)
            except OSError as exc:
                # Whatever holds that port must not get guests' requests: any free port will do,
                # the redirect follows the port really bound.
                LOG.error("metadata proxy cannot listen on port %s (%s); using a free port", port, exc)
                try:
                    self.port = await self.listener.start(app, "0.0.0.0", 0)
                except OSError:
                    LOG.exception("metadata proxy cannot listen at all")
                    return None
            self._session = aiohttp.ClientSession(timeout=FORWARD_TIMEOUT)
            LOG.info("metadata proxy on port %s", self.port)
        return self.port

    async def stop(self) -> None:
        await self.listener.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.port = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self.current_state()
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        guest = None
        if state is not None and sockname and request.remote:
            guest = guest_at(state, str(sockname[0]), request.remote)
        if state is None or guest is None or guest.instance_uuid is None or self._session is None:
            raise web.HTTPForbidden(text="this address is no guest of this host\n")
        key = self.configured_key or state.metadata_secret
        headers = {"X-Instance-ID": guest.instance_uuid, "X-Tenant-ID": guest.project_id or "",
                   "X-Instance-ID-Signature": sign(key, guest.instance_uuid),
                   PROXY_HOST_HEADER: self.host}
        # Only the path is the guest's: the destination is always the controller's service.
        url = URL.build(scheme="http", host=state.metadata_host, port=state.metadata_port,
                        path=request.rel_url.path)
        posted: bytes | None = None
        if request.method == "POST":
            posted = await read_bounded(request, POSTED_LIMIT)
            if posted is None:
                raise web.HTTPBadRequest(text="Request is too large.\n")
        try:
            async with self._session.request(request.method, url, headers=headers, data=posted,
                                             allow_redirects=False) as answer:
                body = await answer.read()
                passed = {k: answer.headers[k] for k in PASSED_BACK if k in answer.headers}
                return web.Response(status=answer.status, body=body, headers=passed)
        except (aiohttp.ClientError, TimeoutError) as exc:
            LOG.warning("metadata request of %s not forwarded: %s", guest.instance_uuid, exc)
            raise web.HTTPBadGateway(text="the metadata service cannot be reached\n") from exc

