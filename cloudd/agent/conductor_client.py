"""The agent's typed handle on the conductor: one method per ``conductor.*`` RPC method.

``ConductorAPI`` is the interface the compute manager depends on, so tests can hand it an
in-memory double. ``ConductorClient`` implements it over an ``RpcPeer``; the agent swaps
``peer`` when it reconnects, so the manager keeps one client for its whole life.

Reports (instance updates, action events, faults, build failures, destroyed guests) survive a
lost link: each carries an idempotency key (``ReportKey``: the operation it belongs to, see
``operation``, and its sequence in it), waits while the link is down and is sent again, with the
same key, over the next one; the conductor applies a key once. Reports on one instance go out
in the order they were made. Reads and registration fail at once instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import BaseModel

from cloudd.rpc import RpcConnectionLost, RpcPeer, RpcTimeout
from cloudd.rpc.contracts.compute import HostResources
from cloudd.rpc.contracts.conductor import (
    PREFIX,
    ActionEvent,
    AgentInstanceValues,
    BuildFailedReport,
    FaultCreate,
    Heartbeat,
    HostRef,
    InstanceDestroyed,
    InstanceList,
    InstanceOffloaded,
    InstanceRecord,
    InstanceRef,
    InstanceUpdate,
    NodeUpdate,
    Registered,
    RegisterHost,
    ReportKey,
)
from cloudd.rpc.contracts.instance import Instance

LOG = logging.getLogger(__name__)
# Pause before sending a report again over a link that is up but did not answer in time.
TIMEOUT_RETRY_DELAY = 1.0
ReplyT = TypeVar("ReplyT", bound=BaseModel)


@dataclass
class _Operation:
    """One run of a compute action: its reports are keyed ``<id>/<sequence>``."""

    id: str
    sequences: Iterator[int] = field(default_factory=itertools.count)

    def next_key(self) -> ReportKey:
        return ReportKey(operation=self.id, sequence=next(self.sequences))


_operation: contextvars.ContextVar[_Operation | None] = contextvars.ContextVar(
    "report_operation", default=None)


@contextmanager
def operation() -> Iterator[None]:
    """Key the reports made inside as one operation (the compute manager wraps each action).
    The id is fresh each time: a request id is shared by the servers of one create, and an
    action redone at start-up has none."""
    token = _operation.set(_Operation(uuidlib.uuid4().hex))
    try:
        yield
    finally:
        _operation.reset(token)


def next_report_key() -> ReportKey:
    """The next key of the current operation; outside one, a report is an operation alone."""
    current = _operation.get() or _Operation(uuidlib.uuid4().hex)
    return current.next_key()


class ConductorAPI(Protocol):
    async def register_host(self, request: RegisterHost) -> Registered: ...

    async def heartbeat(self, request: Heartbeat) -> None: ...

    async def instance_get(self, uuid: str) -> Instance: ...

    async def instances_on_host(self, host: str) -> list[Instance]: ...

    async def instance_update(
        self,
        uuid: str,
        values: AgentInstanceValues,
        expected_task_state: list[str | None] | None = None,
        expected_vm_state: list[str] | None = None,
    ) -> Instance: ...

    async def action_event(self, event: ActionEvent) -> None: ...

    async def fault_create(self, fault: FaultCreate) -> None: ...

    async def build_failed(self, report: BuildFailedReport) -> None: ...

    async def instance_destroyed(self, uuid: str, host: str | None) -> None: ...

    async def instance_offloaded(self, uuid: str, host: str) -> None: ...

    async def node_update(self, host: str, node: HostResources) -> None: ...


class ConductorClient:
    """``ConductorAPI`` over RPC. Errors are the conductor's (``UnexpectedTaskState``,
    ``InstanceNotFoundError``, ...) or the link's (``RpcConnectionLost``, ``RpcTimeout``)."""

    def __init__(self, peer: RpcPeer | None = None) -> None:
        self.peer = peer
        # The link reports go over: set once the host registered on it (the agent calls
        # ``link_ready``), None while there is none.
        self._ready: RpcPeer | None = peer
        self._link_changed = asyncio.Event()  # set (and replaced) by each link_ready
        # Per instance: its reports waiting or being sent (an asyncio.Lock queues in order).
        self._queues: dict[str, tuple[asyncio.Lock, int]] = {}

    def _peer(self) -> RpcPeer:
        if self.peer is None:
            raise RpcConnectionLost("not connected to the controller")
        return self.peer

    # ----- the link reports wait for --------------------------------------------------------

    def link_ready(self, peer: RpcPeer) -> None:
        """``peer`` is registered: the reports waiting for a link go now."""
        self.peer = self._ready = peer
        woken, self._link_changed = self._link_changed, asyncio.Event()
        woken.set()

    def link_lost(self) -> None:
        self._ready = None

    async def _next_link(self, failed: RpcPeer | None) -> RpcPeer:
        """The first registered link other than ``failed`` (waiting for it)."""
        while self._ready is None or self._ready is failed or self._ready.closed:
            await self._link_changed.wait()
        return self._ready

    @asynccontextmanager
    async def _in_order(self, uuid: str) -> AsyncIterator[None]:
        lock, users = self._queues.get(uuid) or (asyncio.Lock(), 0)
        self._queues[uuid] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._queues[uuid]
            if users > 1:
                self._queues[uuid] = (lock, users - 1)
            else:
                del self._queues[uuid]

    async def _report(self, uuid: str, method: str, make: Callable[[ReportKey], BaseModel],
                      reply: type[ReplyT] | None = None) -> ReplyT | None:
        """Send the report ``make(key)`` until the conductor answers, over as many links as it
        takes; the answer may be an error (the conductor's: not retried)."""
        key = next_report_key()
        request = make(key)
        async with self._in_order(uuid):
            peer, failed = self._ready, None
            while True:
                if peer is None or peer.closed:
                    LOG.warning("%s of %s (key %s/%d) queued until the controller is back",
                                method, uuid, key.operation, key.sequence)
                    peer = await self._next_link(failed)
                try:
                    if reply is None:
                        await peer.call(PREFIX + method, request)
                        return None
                    return await peer.call(PREFIX + method, request, reply)
                except RpcConnectionLost as exc:  # perhaps applied: the key tells the retry
                    LOG.warning("%s of %s (key %s/%d) not answered: %s", method, uuid,
                                key.operation, key.sequence, exc)
                    peer, failed = None, peer
                except RpcTimeout as exc:
                    LOG.warning("%s of %s (key %s/%d) timed out: %s; sent again", method, uuid,
                                key.operation, key.sequence, exc)
                    await asyncio.sleep(TIMEOUT_RETRY_DELAY)

    async def register_host(self, request: RegisterHost) -> Registered:
        return await self._peer().call(PREFIX + "register_host", request, Registered)

    async def heartbeat(self, request: Heartbeat) -> None:
        await self._peer().call(PREFIX + "heartbeat", request)

    async def instance_get(self, uuid: str) -> Instance:
        record = await self._peer().call(
            PREFIX + "instance_get", InstanceRef(uuid=uuid), InstanceRecord
        )
        return record.instance

    async def instances_on_host(self, host: str) -> list[Instance]:
        found = await self._peer().call(
            PREFIX + "instances_on_host", HostRef(host=host), InstanceList
        )
        return found.instances

    async def instance_update(
        self,
        uuid: str,
        values: AgentInstanceValues,
        expected_task_state: list[str | None] | None = None,
        expected_vm_state: list[str] | None = None,
    ) -> Instance:
        def update(key: ReportKey) -> InstanceUpdate:
            return InstanceUpdate(uuid=uuid, values=values, expected_task_state=expected_task_state,
                                  expected_vm_state=expected_vm_state, key=key)

        record = await self._report(uuid, "instance_update", update, InstanceRecord)
        assert record is not None
        return record.instance

    async def action_event(self, event: ActionEvent) -> None:
        await self._report(event.uuid, "action_event", lambda key: event.model_copy(
            update={"key": key}))

    async def fault_create(self, fault: FaultCreate) -> None:
        await self._report(fault.uuid, "fault_create", lambda key: fault.model_copy(
            update={"key": key}))

    async def build_failed(self, report: BuildFailedReport) -> None:
        await self._report(report.uuid, "build_failed", lambda key: report.model_copy(
            update={"key": key}))

    async def instance_destroyed(self, uuid: str, host: str | None) -> None:
        # Idempotent by itself (a deleted row stays deleted): queued and retried, no key needed.
        await self._report(uuid, "instance_destroyed",
                           lambda key: InstanceDestroyed(uuid=uuid, host=host))

    async def instance_offloaded(self, uuid: str, host: str) -> None:
        # Idempotent too: an offloaded row has no host, and a second report changes nothing.
        await self._report(uuid, "instance_offloaded",
                           lambda key: InstanceOffloaded(uuid=uuid, host=host))

    async def node_update(self, host: str, node: HostResources) -> None:
        await self._peer().call(PREFIX + "node_update", NodeUpdate(host=host, node=node))
