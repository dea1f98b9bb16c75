"""The compute manager's action machinery: events, expected-state updates, faults, reverts.

``ManagerBase.run_action`` is Nova's skeleton of one instance action (``wrap_instance_event``,
``reverts_task_state``, ``wrap_instance_fault`` in one place); ``ComputeManager`` supplies the
driver work of each action.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from cloudd.agent.compute.drivers.base import ComputeDriver, InstanceNotFound
from cloudd.agent.compute.manager_utils import vm_state_after_failure
from cloudd.agent.conductor_client import ConductorAPI, operation
from cloudd.rpc import RemoteError
from cloudd.rpc.contracts.conductor import (
    ActionEvent,
    AgentInstanceValues,
    FaultCreate,
    InstanceNotFoundError,
    UnexpectedTaskState,
    UnexpectedVMState,
)
from cloudd.rpc.contracts.instance import Instance
from cloudd.vocab import power_state

LOG = logging.getLogger(__name__)
# Pauses between tries of an instance update while the controller's database is unreachable.
DATABASE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# The row moved on without us: deleted, or another action holds it.
LOST_RACE = (UnexpectedTaskState, UnexpectedVMState, InstanceNotFoundError)
# Set while init_host reconciles: the actions it redoes must not wait for the readiness that
# only comes at the end of the reconciliation.
_reconciling: contextvars.ContextVar[bool] = contextvars.ContextVar("reconciling", default=False)

# An action's driver work: what it did, as the columns to save with the action's end.
Work = Callable[[Instance], Awaitable[AgentInstanceValues]]


class Abandoned(Exception):
    """The action stops without a fault: the instance is gone, another action owns it, or the
    build was handed back to the controller for rescheduling."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


class ManagerBase:
    def __init__(
        self,
        host_name: str,
        driver: ComputeDriver,
        conductor: ConductorAPI,
        instances_path: str | Path,
    ) -> None:
        self.host = host_name
        self.driver = driver
        self.conductor = conductor
        self.instances_path = Path(instances_path)
        # Actions wait until init_host has reconciled, or a build arriving during start-up
        # would be taken for an interrupted one (Nova only consumes RPC after init_host).
        self.ready = asyncio.Event()

        self._background: set[asyncio.Task[None]] = set()
        # uuids with an action running or waiting for readiness: a reconciliation leaves them
        # alone, their action will settle the row itself.
        self.in_flight: Counter[str] = Counter()
        self._driver_started = False

    @contextmanager
    def reconciling(self) -> Iterator[None]:
        """Around init_host's reconciliation; readiness is announced when it ends."""
        token = _reconciling.set(True)
        try:
            yield
        finally:
            _reconciling.reset(token)
            self.ready.set()

    # ----- the action machinery -----------------------------------------------------------

    async def run_action(
        self, uuid: str, request_id: str, method: str, expected: list[str | None], work: Work,
        intermediate: str | None = None,
    ) -> None:
        """Nova's action skeleton: check the task_state the controller set, do ``work``, save its
        values with task_state None; on failure a fault and the vm_state the guest still fits."""
        async with self.action(uuid, request_id, method):
            instance = await self.get_instance(uuid)
            if instance.task_state not in expected:
                raise Abandoned(f"{method}: task_state is {instance.task_state!r}, "
                                f"expected one of {expected}")
            if intermediate is not None:
                await self.update(uuid, AgentInstanceValues(task_state=intermediate), expected)
                expected = [intermediate]
            try:
                values = await work(instance)
            except Abandoned:
                raise
            except Exception as exc:
                await self.revert_after_failure(instance, exc, expected)
                raise
            done = AgentInstanceValues(task_state=None, power_state=await self.guest_power(uuid))
            await self.update(uuid, values.merged(done), expected)

    @asynccontextmanager
    async def action(self, uuid: str, request_id: str, method: str) -> AsyncIterator[None]:
        """Record the ``compute_<method>`` event around the body; swallow ``Abandoned``.

        Its reports are one operation (their idempotency keys), and the instance counts as in
        flight until the last of them is delivered, so a reconnection's reconciliation leaves
        them the row they settle: a build that finished while the link was down ends ACTIVE."""
        self.in_flight[uuid] += 1
        try:
            with operation():
                if not _reconciling.get():
                    await self.ready.wait()
                event = "compute_" + method
                await self._event(uuid, request_id, event, "start")
                try:
                    yield
                except Abandoned as exc:
                    LOG.info("%s of %s stopped: %s", method, uuid, exc)
                    await self._event(uuid, request_id, event, "finish", "Error", exc.details,
                                      str(exc))
                    return
                except Exception:
                    await self._event(uuid, request_id, event, "finish", "Error",
                                      traceback.format_exc())
                    raise
                await self._event(uuid, request_id, event, "finish", "Success")
        finally:
            self.in_flight[uuid] -= 1
            if self.in_flight[uuid] <= 0:
                del self.in_flight[uuid]

    async def _event(self, uuid: str, request_id: str, event: str, phase: str,
                     result: str | None = None, trace: str | None = None,
                     details: str | None = None) -> None:
        if not request_id:  # work the manager started itself (start-up, power sync)
            return
        try:
            await self.conductor.action_event(ActionEvent(
                uuid=uuid, request_id=request_id, event=event, phase=phase, host=self.host,
                result=result, traceback=trace, details=details))
        except Exception as exc:  # bookkeeping must never fail the action itself
            LOG.warning("cannot record %s %s of %s: %s", event, phase, uuid, exc)

    async def get_instance(self, uuid: str) -> Instance:
        try:
            return await self.conductor.instance_get(uuid)
        except InstanceNotFoundError:
            raise Abandoned(f"instance {uuid} no longer exists") from None

    async def update(self, uuid: str, values: AgentInstanceValues,
                     expected_task_state: list[str | None] | None = None) -> Instance:
        """``instance_update``; a lost race (deleted, or another task) becomes ``Abandoned``.

        While the controller's database is away (restarting) the update is retried for about
        a minute: a finished build must not stay ``spawning`` because of a short outage."""
        retried = False
        for delay in (*DATABASE_RETRY_DELAYS, None):
            try:
                return await self.conductor.instance_update(uuid, values, expected_task_state)
            except LOST_RACE as exc:
                if retried:  # the try that failed may have been applied, its reply lost
                    row = await self._saved_already(uuid, values)
                    if row is not None:
                        return row
                raise Abandoned(f"instance {uuid} changed under us: {exc}") from None
            except RemoteError as exc:
                if delay is None or exc.details.get("type") != "DatabaseError":
                    raise
                LOG.warning("cannot update %s, the controller's database is away (retry in"
                            " %.1fs): %s", uuid, delay, exc)
                await asyncio.sleep(delay)
                retried = True
        raise AssertionError("unreachable")

    async def _saved_already(self, uuid: str, values: AgentInstanceValues) -> Instance | None:
        """The row, if it holds every column ``values`` gives (the update was applied)."""
        try:
            row = await self.conductor.instance_get(uuid)
        except InstanceNotFoundError:
            return None
        saved = all(getattr(row, column) == value for column, value in values.columns().items())
        return row if saved else None

    async def update_quietly(self, uuid: str, values: AgentInstanceValues,
                             expected_task_state: list[str | None] | None = None) -> None:
        try:
            await self.update(uuid, values, expected_task_state)
        except Abandoned as exc:
            LOG.info("%s", exc)

    async def guest_power(self, uuid: str) -> int:
        try:
            return (await self.driver.get_info(uuid)).power_state
        except InstanceNotFound:
            return power_state.NOSTATE

    async def record_fault(self, uuid: str, exc: BaseException, code: int = 500) -> None:
        details = "".join(traceback.format_exception(exc))
        try:
            await self.conductor.fault_create(FaultCreate(
                uuid=uuid, code=code, message=(str(exc) or type(exc).__name__)[:255],
                details=details, host=self.host))
        except Exception as error:
            LOG.warning("cannot record the fault of %s: %s", uuid, error)

    async def revert_after_failure(self, instance: Instance, exc: Exception,
                                   expected: list[str | None]) -> None:
        uuid = instance.uuid
        LOG.error("action on %s failed: %s", uuid, exc)
        await self.record_fault(uuid, exc)
        try:
            guest: int | None = (await self.driver.get_info(uuid)).power_state
        except InstanceNotFound:
            guest = None
        except Exception:
            LOG.exception("cannot read the state of %s after a failure", uuid)
            guest = None
        values = AgentInstanceValues(vm_state=vm_state_after_failure(instance.vm_state, guest),
                                     task_state=None, power_state=guest or power_state.NOSTATE)
        await self.update_quietly(uuid, values, expected)
