"""The service host: one object owns the loop's tasks and the services' start and stop.

Modelled on Home Assistant's core: services start in dependency order and stop in reverse order,
each with a timeout; every long-running task is supervised, so a crash is logged with its
traceback and then either restarted after a backoff or turned into an orderly shutdown with a
non-zero exit code, as `[DEFAULT] task_restart_policy` says. Nothing dies silently.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Literal, Required, TypedDict, TypeVar

from pydantic import BaseModel, SerializeAsAny

from cloudd.config import CloudConfig

LOG = logging.getLogger(__name__)

ServiceState = Literal["stopped", "starting", "running", "stopping", "failed"]
S = TypeVar("S", bound="Service")


class ServiceHealth(BaseModel):
    """One service's part of /healthz. A service with more to say reports a subclass of this
    (its own fields after these). Only the fields given are reported (``exclude_unset``): the
    error only when there is one, an optional detail only when it is known."""

    state: ServiceState
    error: str | None = None


class ServiceStateFields(TypedDict, total=False):
    """``state`` and (when there is one) ``error``, to start a ``ServiceHealth`` with."""

    state: Required[ServiceState]
    error: str


class HealthReport(BaseModel):
    """The process's /healthz: ``status`` ok only when every service is running."""

    status: Literal["ok", "degraded"]
    name: str
    uptime: float
    # SerializeAsAny: each service's own subclass is reported whole, not cut to ServiceHealth.
    services: dict[str, SerializeAsAny[ServiceHealth]]

    def as_json(self) -> dict[str, object]:
        """The /healthz body: the fields each report was given, nothing else."""
        return self.model_dump(mode="json", exclude_unset=True)


class StartupRefused(Exception):
    """A service cannot work on this host as configured; the message is one line saying what
    to change (logged without a traceback, the process exits 1)."""


class Service:
    """Base class of an in-process service. Subclasses override start/stop/health."""

    name: str = ""
    depends: tuple[str, ...] = ()

    def __init__(self, host: ServiceHost) -> None:
        self.host = host
        self.state: ServiceState = "stopped"
        self.error: str | None = None

    async def start(self) -> None:
        """Acquire resources and schedule tasks; return once the service is usable."""

    async def stop(self) -> None:
        """Release everything start() acquired. Supervised tasks are cancelled by the host."""

    def health(self) -> ServiceHealth:
        return ServiceHealth(**self.state_fields())

    def state_fields(self) -> ServiceStateFields:
        fields = ServiceStateFields(state=self.state)
        if self.error:
            fields["error"] = self.error
        return fields


class ServiceHost:
    def __init__(self, config: CloudConfig, name: str = "cloudd") -> None:
        self.config = config
        self.name = name
        self.services: dict[str, Service] = {}
        self.started_at = time.time()
        self.exit_code = 0
        self._order: list[Service] = []
        self._tasks: dict[asyncio.Task[None], Service | None] = {}
        self._stop_requested = asyncio.Event()

    # ----- registration -------------------------------------------------------------------
    def add(self, service: Service) -> None:
        if service.name in self.services:
            raise ValueError(f"service {service.name!r} added twice")
        self.services[service.name] = service

    def get(self, cls: type[S]) -> S:
        """The running instance of a service class (services find each other through this)."""
        for service in self.services.values():
            if isinstance(service, cls):
                return service
        raise LookupError(f"no {cls.__name__} in this process")

    def find(self, cls: type[S]) -> S | None:
        try:
            return self.get(cls)
        except LookupError:
            return None

    def start_order(self) -> list[Service]:
        """Topological order by `depends`; a missing or circular dependency is a programming error."""
        order: list[Service] = []
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in done:
                return
            if name in visiting:
                raise ValueError("circular service dependency: " + " -> ".join((*chain, name)))
            if name not in self.services:
                raise ValueError(f"service {chain[-1]!r} depends on unknown {name!r}")
            visiting.add(name)
            for dep in self.services[name].depends:
                visit(dep, (*chain, name))
            visiting.discard(name)
            done.add(name)
            order.append(self.services[name])

        for name in self.services:
            visit(name, ())
        return order

    # ----- supervised tasks ---------------------------------------------------------------
    def create_task(
        self,
        factory: Callable[[], Awaitable[None]],
        name: str,
        service: Service | None = None,
        restart: bool | None = None,
    ) -> asyncio.Task[None]:
        """Run `factory()` under supervision. `restart` None follows the configured policy."""
        policy = self.config.default.task_restart_policy
        should_restart = (policy == "restart") if restart is None else restart
        task = asyncio.create_task(self._supervise(factory, name, service, should_restart), name=name)
        self._tasks[task] = service
        task.add_done_callback(self._tasks.pop)
        return task

    def periodic(
        self,
        interval: float,
        fn: Callable[[], Awaitable[None]],
        name: str,
        service: Service | None = None,
        initial_delay: float | None = None,
    ) -> asyncio.Task[None]:
        """Call `fn` every `interval` seconds; one failed run is logged and the next goes on."""

        async def loop() -> None:
            await asyncio.sleep(interval if initial_delay is None else initial_delay)
            while True:
                started = time.monotonic()
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    LOG.exception("periodic task %s failed; it runs again in %.1fs", name, interval)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        return self.create_task(loop, name, service, restart=True)

    async def _supervise(
        self, factory: Callable[[], Awaitable[None]], name: str, service: Service | None, restart: bool
    ) -> None:
        backoff = 0.5
        while True:
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                LOG.exception("task %s crashed", name)
                if service is not None:
                    service.error = f"task {name} crashed: {exc!r}"
                if not restart:
                    if service is not None:
                        service.state = "failed"
                    self.request_stop(exit_code=1)
                    return
            # A task that ran a while before crashing starts again quickly; a crash loop slows down.
            backoff = 0.5 if time.monotonic() - started > 60 else min(backoff * 2, 30.0)
            LOG.warning("restarting task %s in %.1fs", name, backoff)
            await asyncio.sleep(backoff)

    # ----- lifecycle ----------------------------------------------------------------------
    def request_stop(self, exit_code: int = 0) -> None:
        self.exit_code = max(self.exit_code, exit_code)
        self._stop_requested.set()

    async def start(self) -> None:
        for service in self.start_order():
            service.state = "starting"
            LOG.info("starting %s", service.name)
            try:
                await service.start()
            except BaseException:
                service.state = "failed"
                raise
            service.state = "running"
            self._order.append(service)

    async def stop(self) -> None:
        timeout = self.config.default.shutdown_timeout
        for service in reversed(self._order):
            service.state = "stopping"
            LOG.info("stopping %s", service.name)
            await self._cancel_tasks(service, timeout)
            try:
                await asyncio.wait_for(service.stop(), timeout)
            except TimeoutError:
                LOG.error("service %s did not stop within %.0fs", service.name, timeout)
            except Exception:
                LOG.exception("service %s failed while stopping", service.name)
            service.state = "stopped"
        self._order.clear()
        await self._cancel_tasks(None, timeout, everything=True)

    async def _cancel_tasks(
        self, owner: Service | None, wait: float, everything: bool = False
    ) -> None:
        tasks = [t for t, s in self._tasks.items() if everything or s is owner]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=wait)

    async def run(self, ready: Callable[[], None] | None = None) -> int:
        """Start everything, wait for SIGTERM/SIGINT (or request_stop), stop everything."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            try:
                await self.start()
            except StartupRefused as exc:  # the message is the whole story: no traceback
                LOG.error("start-up refused: %s", exc)
                self.exit_code = 1
                return 1
            except Exception:
                LOG.exception("start-up failed")
                self.exit_code = 1
                return 1
            if ready is not None:
                ready()
            await self._stop_requested.wait()
            return self.exit_code
        finally:
            await self.stop()
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        LOG.info("received %s, shutting down", sig.name)
        self.request_stop()

    def health(self) -> HealthReport:
        services = {s.name: s.health() for s in self.services.values()}
        healthy = all(s.state == "running" for s in services.values())
        return HealthReport(
            status="ok" if healthy else "degraded",
            name=self.name,
            uptime=round(time.time() - self.started_at, 3),
            services=services,
        )
