"""The controller's HTTP front: one aiohttp application with a sub-application per API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from cloudd.api.hosthealth import hosts_health
from cloudd.api.keys import HOST_KEY
from cloudd.api.metrics import metrics_handler
from cloudd.api.openapi import OPENAPI_KEY, build_openapi, openapi_handler
from cloudd.core import Service, ServiceHost
from cloudd.frontdoor.compute import ComputeAPI
from cloudd.image.api import ImageAPI
from cloudd.listener import Listener
from cloudd.metrics import metrics_middleware
from cloudd.web.inputs import JSON_BODY_LIMIT

LOG = logging.getLogger(__name__)

__all__ = ["HOST_KEY", "ApiService", "SubAppFactory", "healthz"]

# Services register sub-apps here before the API starts: (prefix, factory building the sub-app).
SubAppFactory = Callable[[ServiceHost], web.Application]


async def healthz(request: web.Request) -> web.Response:
    host = request.app[HOST_KEY]
    report = host.health()
    status = 200 if report.status == "ok" else 503
    return web.json_response(report.as_json(), status=status)


class ApiService(Service):
    """Serves /healthz and every registered API sub-application on [api] listen:port."""

    name = "api"
    depends = ("database", "scheduler", "conductor")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.subapps: list[tuple[str, SubAppFactory]] = []
        self.listener = Listener(host.config.api.client_idle_timeout)
        self.port: int | None = None

    def mount(self, prefix: str, factory: SubAppFactory) -> None:
        self.subapps.append((prefix, factory))

    def build_app(self) -> web.Application:
        # aiohttp takes client_max_size from this root app only: it bounds any buffered read on
        # every API (each API's routes have their own, smaller or streamed, limits on top).
        app = web.Application(client_max_size=JSON_BODY_LIMIT, middlewares=[metrics_middleware])
        app[HOST_KEY] = self.host
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics_handler)  # Prometheus text format
        app.router.add_get("/healthz/hosts", hosts_health)  # admin: each agent's host check
        app.router.add_get("/openapi.json", openapi_handler)  # public: routes and schemas only
        for prefix, factory in self.subapps:
            app.add_subapp(prefix, factory(self.host))
        return app

    async def start(self) -> None:
        cfg = self.host.config.api
        app = self.build_app()
        # Built once from the routers (reading the handlers' source files: off the loop).
        app[OPENAPI_KEY] = await asyncio.to_thread(build_openapi, app)
        self.port = await self.listener.start(app, cfg.listen, cfg.port)
        if cfg.public_url.endswith(":0"):  # port 0 (tests): the catalog must name the real port
            cfg.public_url = cfg.public_url[:-1] + str(self.port)
        LOG.info("API listening on %s:%s", cfg.listen, self.port)
        # Uploads a killed controller left `saving` go back to queued, on whichever controller.
        self.host.periodic(30.0, ImageAPI(self.host).reset_stale_uploads,
                           "reset stale image uploads", self, initial_delay=1.0)
        reclaim = self.host.config.default.reclaim_instance_interval
        if reclaim > 0:  # soft-deleted servers go for good once their time is up
            self.host.periodic(float(min(max(reclaim / 2, 1), 60)),
                               ComputeAPI(self.host).reclaim_queued_deletes,
                               "reclaim soft-deleted servers", self)
        if self.host.config.default.shelved_offload_time > 0:  # shelved servers free their host
            self.host.periodic(float(self.host.config.default.shelved_poll_interval),
                               ComputeAPI(self.host).offload_shelved,
                               "offload shelved servers", self)

    async def stop(self) -> None:
        await self.listener.stop()
