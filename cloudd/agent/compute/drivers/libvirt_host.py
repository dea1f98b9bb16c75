"""The libvirt connection of the driver: blocking calls in worker threads, events to the loop.

libvirt-python is blocking, so every call goes through ``Host.call`` (``asyncio.to_thread``).
Lifecycle events come from libvirt's default event loop, run on one daemon thread per process
and registered before the first ``libvirt.open``; callbacks hop to the driver's event loop with
``call_soon_threadsafe``. (libvirtaio would bind libvirt's process-wide event implementation to
the first asyncio loop for good, which breaks any later loop in the same process, e.g. the next
test or an agent restarted in-process.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from cloudd.agent.compute.drivers.base import DriverError, InstanceNotFound, LifecycleEvent
from cloudd.vocab import power_state

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# libvirt domain state -> Nova power state (nova/virt/libvirt/guest.py LIBVIRT_POWER_STATE).
POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: power_state.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: power_state.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: power_state.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: power_state.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: power_state.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: power_state.SUSPENDED,
}
# Lifecycle event -> the power state it means (Nova's mapping; DEFINED/UNDEFINED etc. are not
# power changes and are dropped).
EVENT_STATES = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: power_state.RUNNING,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: power_state.RUNNING,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: power_state.PAUSED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: power_state.CRASHED,
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: power_state.SUSPENDED,
}
EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started", libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended", libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed", libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
}

_event_thread_lock = threading.Lock()
_event_thread: threading.Thread | None = None


def _ensure_event_thread() -> None:
    """Register libvirt's default event implementation and run it, once per process."""
    global _event_thread
    with _event_thread_lock:
        if _event_thread is not None:
            return
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors raise anyway
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        _event_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _event_thread.start()


def translate(error: libvirt.libvirtError, uuid: str | None = None) -> DriverError:
    """A libvirt error as the driver interface's error (no such domain -> InstanceNotFound)."""
    if uuid is not None and error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
        return InstanceNotFound(uuid)
    return DriverError(f"libvirt: {error.get_error_message() or error}")


class Host:
    """One libvirt connection, its event subscription, and a thread hop for every call."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._callback_id: int | None = None

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            raise DriverError("libvirt driver used before init_host()")
        return self._conn

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

    async def connect(self, on_event: Callable[[str, int, int], None],
                      owns: Callable[[str], bool]) -> None:
        """Open the connection; ``on_event(uuid, event, detail)`` runs on the calling loop for
        the domains ``owns(uuid)`` accepts (asked on the event thread: it may touch files)."""
        loop = asyncio.get_running_loop()

        def deliver(_conn: Any, domain: Any, event: int, detail: int, _opaque: Any) -> None:
            uuid = domain.UUIDString()  # local to the binding: no call to libvirtd
            if owns(uuid) and not loop.is_closed():
                loop.call_soon_threadsafe(on_event, uuid, event, detail)

        def open_and_subscribe() -> None:
            _ensure_event_thread()
            conn = libvirt.open(self.uri)
            self._callback_id = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, deliver, None)
            self._conn = conn

        try:
            await self.call(open_and_subscribe)
        except libvirt.libvirtError as exc:
            raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc}") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return

        def close_connection() -> None:
            try:
                if self._callback_id is not None:
                    conn.domainEventDeregisterAny(self._callback_id)
                conn.close()
            except libvirt.libvirtError as exc:
                LOG.warning("closing the libvirt connection: %s", exc)

        await self.call(close_connection)

    async def lookup(self, uuid: str) -> libvirt.virDomain:
        try:
            return await self.call(self.conn.lookupByUUIDString, uuid)
        except libvirt.libvirtError as exc:
            raise translate(exc, uuid) from exc

    async def domain_call(self, uuid: str, method: str, *args: Any) -> Any:
        """``domain.<method>(*args)`` in a thread, libvirt errors translated."""
        domain = await self.lookup(uuid)
        try:
            return await self.call(functools.partial(getattr(domain, method), *args))
        except libvirt.libvirtError as exc:
            raise translate(exc, uuid) from exc

    async def power_state(self, uuid: str) -> int:
        """The Nova power state; a stopped domain with a managed save image is SUSPENDED."""
        domain = await self.lookup(uuid)

        def read() -> int:
            state = POWER_STATES.get(domain.state()[0], power_state.NOSTATE)
            if state == power_state.SHUTDOWN and domain.hasManagedSaveImage(0):
                return power_state.SUSPENDED
            return state

        try:
            return await self.call(read)
        except libvirt.libvirtError as exc:
            raise translate(exc, uuid) from exc


def lifecycle_event(uuid: str, event: int, detail: int) -> LifecycleEvent | None:
    """The LifecycleEvent for a libvirt event, None for events that are no power change."""
    state = EVENT_STATES.get(event)
    if state is None:
        return None
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED and detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED:
        state = power_state.SUSPENDED
    return LifecycleEvent(uuid=uuid, power_state=state, reason=f"libvirt {EVENT_NAMES[event]}")
