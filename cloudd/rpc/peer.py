"""One end of an RPC link over an aiohttp websocket; both ends call and serve on the same socket."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload

import aiohttp
from pydantic import BaseModel, ValidationError

from cloudd.log import request_id_var
from cloudd.metrics import observe_rpc_call
from cloudd.rpc.errors import (
    BadPayload,
    RemoteError,
    RpcConnectionLost,
    RpcError,
    RpcTimeout,
    error_from_wire,
)
from cloudd.rpc.messages import (
    CallMessage,
    CastMessage,
    ErrorBody,
    ErrorMessage,
    ResultMessage,
    describe_validation_error,
    envelope_adapter,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
_CLOSING_TYPES = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


class WebSocketLike(Protocol):
    """What both ``web.WebSocketResponse`` and ``ClientWebSocketResponse`` offer."""

    @property
    def closed(self) -> bool: ...

    async def send_str(self, data: str) -> None: ...

    async def receive(self) -> aiohttp.WSMessage: ...

    async def close(self) -> bool: ...


@dataclass(frozen=True)
class RpcContext:
    """What a handler knows about the call it serves (re-exported by cloudd.rpc.context)."""

    method: str
    request_id: str | None
    peer: RpcPeer  # the calling side: ``await ctx.peer.call(...)`` calls back over the same link
    timeout: float | None  # how long the caller waits; past it, nobody reads the reply

    @property
    def identity(self) -> str | None:
        """Who the caller is (e.g. the agent's host name), once the owner of the peer has set it."""
        return self.peer.identity


class Dispatcher(Protocol):
    """What a peer serves its calls with: ``cloudd.rpc.dispatch.RpcDispatcher``."""

    async def dispatch(self, ctx: RpcContext, raw_args: dict[str, Any]) -> Any: ...


class RpcPeer:
    """Calls the other side's methods and serves ``dispatcher``'s methods to it.

    ``run()`` must be running (as a task) for replies to arrive; it returns when the socket closes.
    """

    def __init__(
        self,
        ws: WebSocketLike,
        dispatcher: Dispatcher,
        *,
        name: str = "peer",
        default_timeout: float = 60.0,
        max_in_flight: int = 256,
        remote_address: str | None = None,
    ) -> None:
        self.name = name  # for logs: who is on the other end
        self.identity: str | None = None  # set by the owner once the other side has said who it is
        # The network address the other end connects from (an agent's host address), if known.
        self.remote_address = remote_address
        self.default_timeout = default_timeout
        self._ws = ws
        self._dispatcher = dispatcher
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        # Bounds running handlers, not reading: the reader must keep going so that replies to
        # our own calls (maybe made by those very handlers) still get through.
        self._handler_slots = asyncio.Semaphore(max_in_flight)
        self._send_lock = asyncio.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed or self._ws.closed

    @overload
    async def call(
        self, method: str, args: BaseModel | None, result_type: type[T], *,
        timeout: float | None = None,  # noqa: ASYNC109  # noqa: ASYNC109 - it also travels to the callee
    ) -> T: ...

    @overload
    async def call(
        self, method: str, args: BaseModel | None = None, result_type: None = None, *,
        timeout: float | None = None,  # noqa: ASYNC109  # noqa: ASYNC109 - it also travels to the callee
    ) -> None: ...

    async def call(
        self,
        method: str,
        args: BaseModel | None = None,
        result_type: type[T] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - it also travels to the callee
    ) -> T | None:
        """Call ``method`` on the other side; wait for its result, validated as ``result_type``."""
        self._check_open()
        timeout = self.default_timeout if timeout is None else timeout
        request_id = request_id_var.get()
        message = CallMessage(
            id=uuid.uuid4().hex, method=method, args=_dump_args(args),
            request_id=request_id, timeout=timeout,
        )
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message.id] = reply
        started = asyncio.get_running_loop().time()
        outcome = "error"
        try:
            async with asyncio.timeout(timeout):
                await self._send(message)
                raw_result = await reply
            outcome = "ok"
        except TimeoutError:
            outcome = "timeout"
            raise RpcTimeout(
                f"{method} on {self.name} did not answer within {timeout}s",
                {"method": method, "timeout": timeout},
            ) from None
        finally:
            self._pending.pop(message.id, None)
            elapsed = asyncio.get_running_loop().time() - started
            LOG.debug("rpc call %s to %s request_id=%s %s in %.3fs",
                      method, self.name, request_id, outcome, elapsed)
            observe_rpc_call(method, outcome, elapsed)
        return _parse_result(method, raw_result, result_type)

    async def cast(self, method: str, args: BaseModel | None = None) -> None:
        """Send ``method`` to the other side without waiting for (or getting) an answer."""
        self._check_open()
        message = CastMessage(id=uuid.uuid4().hex, method=method, args=_dump_args(args),
                              request_id=request_id_var.get())
        await self._send(message)
        LOG.debug("rpc cast %s to %s request_id=%s", method, self.name, message.request_id)

    async def run(self) -> None:
        """Read frames until the socket closes; then fail every call still waiting for a reply."""
        try:
            while True:
                try:
                    frame = await self._ws.receive()
                except ConnectionResetError as exc:  # a pong written to a closing socket
                    LOG.info("rpc link to %s reset: %s", self.name, exc)
                    break
                if frame.type == aiohttp.WSMsgType.TEXT:
                    await self._handle_text(frame.data)
                elif frame.type in _CLOSING_TYPES:
                    break
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    LOG.warning("rpc link to %s failed: %s", self.name, frame.data)
                    break
                else:
                    LOG.warning("rpc: ignoring %s frame from %s", frame.type.name, self.name)
        finally:
            self._connection_lost()

    async def close(self) -> None:
        """Close the socket, fail pending calls and cancel the handlers still running."""
        self._connection_lost()
        await self._ws.close()
        # Unlike a dropped link (handlers finish their work: an agent reconnects), closing is the
        # owner shutting down, so nothing should outlive it.
        tasks = list(self._handler_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise RpcConnectionLost(f"rpc link to {self.name} is closed")

    def _connection_lost(self) -> None:
        if not self._closed:
            LOG.info("rpc link to %s closed", self.name)
        self._closed = True
        pending, self._pending = self._pending, {}
        for reply in pending.values():
            if not reply.done():
                reply.set_exception(RpcConnectionLost(f"rpc link to {self.name} was lost"))

    async def _send(self, message: BaseModel) -> None:
        data = message.model_dump_json()
        try:
            # One writer at a time: aiohttp may yield mid-frame when compressing.
            async with self._send_lock:
                await self._ws.send_str(data)
        except (ConnectionError, RuntimeError) as exc:
            raise RpcConnectionLost(f"rpc link to {self.name} is closed: {exc}") from None

    async def _handle_text(self, data: str) -> None:
        try:
            raw = json.loads(data)
        except ValueError:
            LOG.warning("rpc: dropping a non-JSON frame (%d chars) from %s", len(data), self.name)
            return
        try:
            message = envelope_adapter.validate_python(raw)
        except ValidationError as exc:
            await self._reject_malformed(raw, exc)
            return
        if isinstance(message, CallMessage | CastMessage):
            task = asyncio.create_task(self._serve(message), name=f"rpc {message.method}")
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)
        elif isinstance(message, ResultMessage):
            self._resolve(message.id, message.result)
        else:
            body = message.error
            self._resolve(message.id, error_from_wire(body.code, body.message, body.details))

    def _resolve(self, call_id: str, outcome: Any) -> None:
        reply = self._pending.get(call_id)
        if reply is None or reply.done():
            # The caller gave up (timed out) before the answer came.
            LOG.debug("rpc: late or unknown reply %s from %s", call_id, self.name)
        elif isinstance(outcome, RpcError):
            reply.set_exception(outcome)
        else:
            reply.set_result(outcome)

    async def _reject_malformed(self, raw: Any, exc: ValidationError) -> None:
        problem, details = describe_validation_error(exc)
        LOG.warning("rpc: malformed frame from %s: %s", self.name, problem)
        frame_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(frame_id, str):
            return
        error = BadPayload(f"malformed message: {problem}", {"errors": details})
        if raw.get("type") in ("result", "error"):
            # Never answer a reply (that could ping-pong); fail the call it was meant for.
            self._resolve(frame_id, error)
            return
        reply = ErrorMessage(id=frame_id, error=ErrorBody(
            code=error.code, message=error.message, details=error.details))
        try:
            await self._send(reply)
        except RpcConnectionLost:
            pass

    async def _serve(self, message: CallMessage | CastMessage) -> None:
        """Run one incoming call or cast (in its own task, so its request id stays its own)."""
        request_id_var.set(message.request_id)
        timeout = message.timeout if isinstance(message, CallMessage) else None
        ctx = RpcContext(message.method, message.request_id, self, timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply: ResultMessage | ErrorMessage
        async with self._handler_slots:
            try:
                result = await self._dispatcher.dispatch(ctx, message.args)
                reply = ResultMessage(id=message.id, result=result)
            except RpcError as error:
                reply = _error_reply(message.id, error)
            except Exception as exc:
                LOG.exception("rpc: %s from %s failed (request_id=%s)",
                              message.method, self.name, message.request_id)
                remote_error = RemoteError(str(exc), {"type": type(exc).__name__})
                reply = _error_reply(message.id, remote_error)
        outcome = reply.error.code if isinstance(reply, ErrorMessage) else "ok"
        LOG.debug("rpc served %s %s from %s request_id=%s %s in %.3fs", message.type,
                  message.method, self.name, message.request_id, outcome, loop.time() - started)
        if isinstance(message, CastMessage):
            if isinstance(reply, ErrorMessage):  # nobody else will ever hear of it
                LOG.warning("rpc: cast %s from %s failed (request_id=%s): %s", message.method,
                            self.name, message.request_id, reply.error.message)
            return
        try:
            await self._send(reply)
        except RpcConnectionLost:
            LOG.info("rpc: reply to %s lost, link to %s closed (request_id=%s)",
                     message.method, self.name, message.request_id)


def _dump_args(args: BaseModel | None) -> dict[str, Any]:
    return {} if args is None else args.model_dump(mode="json")


def _parse_result(method: str, raw_result: Any, result_type: type[T] | None) -> T | None:
    if result_type is None:
        return None
    try:
        return result_type.model_validate(raw_result)
    except ValidationError as exc:
        problem, details = describe_validation_error(exc)
        raise BadPayload(f"invalid result from {method}: {problem}",
                         {"method": method, "errors": details}) from None


def _error_reply(call_id: str, error: RpcError) -> ErrorMessage:
    details = error.details
    try:
        json.dumps(details)
    except (TypeError, ValueError):
        details = {"unserializable_details": repr(details)[:500]}
    body = ErrorBody(code=error.code, message=error.message, details=details)
    return ErrorMessage(id=call_id, error=body)
