"""RpcPeer over a real loopback websocket: both directions, errors, timeouts, link loss."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest
from harness.rpc_link import Link, LinkFactory
from pydantic import BaseModel

from cloudd.rpc import (
    BadPayload,
    RemoteError,
    RpcConnectionLost,
    RpcContext,
    RpcDispatcher,
    RpcError,
    RpcTimeout,
    UnknownMethod,
    request_id_var,
    rpc_method,
)


class InstanceNotFound(RpcError):
    code = "test_instance_not_found"  # unique: codes are global, the product owns "instance_not_found"


class Empty(BaseModel):
    pass


class EchoArgs(BaseModel):
    text: str
    delay: float = 0.0


class EchoResult(BaseModel):
    text: str
    side: str
    request_id: str | None
    request_id_in_var: str | None
    identity: str | None
    timeout: float | None


class InstanceUpdate(BaseModel):
    uuid: str
    vm_state: str


class EchoService:
    """Served on both ends; ``side`` tells the caller which end answered."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.updates: list[InstanceUpdate] = []
        self.update_seen = asyncio.Event()
        self.handler_started = asyncio.Event()

    @rpc_method
    async def echo(self, ctx: RpcContext, args: EchoArgs) -> EchoResult:
        self.handler_started.set()
        await asyncio.sleep(args.delay)
        return EchoResult(
            text=args.text, side=self.side, request_id=ctx.request_id,
            request_id_in_var=request_id_var.get(), identity=ctx.identity, timeout=ctx.timeout,
        )

    @rpc_method
    async def echo_via_caller(self, ctx: RpcContext, args: EchoArgs) -> EchoResult:
        """Calls back the side that called it, over the same link, before answering."""
        return await ctx.peer.call("echo", args, EchoResult)

    @rpc_method
    async def instance_update(self, ctx: RpcContext, args: InstanceUpdate) -> None:
        self.updates.append(args)
        self.update_seen.set()

    @rpc_method
    async def explode(self, ctx: RpcContext, args: Empty) -> None:
        raise ValueError("disk on fire")

    @rpc_method
    async def find_instance(self, ctx: RpcContext, args: InstanceUpdate) -> None:
        raise InstanceNotFound(f"instance {args.uuid} not found", {"uuid": args.uuid})

    @rpc_method
    async def claim_cores(self, ctx: RpcContext, args: Empty) -> None:
        raise RpcError("too many cores", {"limit": 4}, code="quota_exceeded")

    @rpc_method
    async def hang(self, ctx: RpcContext, args: Empty) -> None:
        self.handler_started.set()
        await asyncio.Event().wait()


@pytest.fixture
def controller_service() -> EchoService:
    return EchoService("controller")


@pytest.fixture
def agent_service() -> EchoService:
    return EchoService("agent")


@pytest.fixture
async def link(
    link_factory: LinkFactory, controller_service: EchoService, agent_service: EchoService
) -> AsyncIterator[Link]:
    controller_dispatcher, agent_dispatcher = RpcDispatcher(), RpcDispatcher()
    controller_dispatcher.register(controller_service)
    agent_dispatcher.register(agent_service)
    async with link_factory(controller_dispatcher, agent_dispatcher) as opened:
        yield opened


async def test_both_ends_call_each_other_on_one_connection(link: Link) -> None:
    link.controller.identity = "compute-1"
    from_agent = await link.agent.call("echo", EchoArgs(text="hi controller"), EchoResult)
    from_controller = await link.controller.call("echo", EchoArgs(text="hi agent"), EchoResult)

    assert (from_agent.side, from_agent.text) == ("controller", "hi controller")
    assert from_agent.identity == "compute-1"  # the controller knows which agent called
    assert (from_controller.side, from_controller.text) == ("agent", "hi agent")
    assert from_controller.identity is None


async def test_handler_can_call_back_the_caller(link: Link) -> None:
    result = await link.agent.call("echo_via_caller", EchoArgs(text="round trip"), EchoResult)

    assert (result.side, result.text) == ("agent", "round trip")


async def test_cast_is_delivered_without_a_reply(
    link: Link, controller_service: EchoService
) -> None:
    await link.agent.cast("instance_update", InstanceUpdate(uuid="i-1", vm_state="active"))

    await asyncio.wait_for(controller_service.update_seen.wait(), 2)
    assert controller_service.updates == [InstanceUpdate(uuid="i-1", vm_state="active")]


async def test_hundred_concurrent_calls_run_in_parallel(link: Link) -> None:
    started = time.monotonic()
    results = await asyncio.gather(*(
        link.agent.call("echo", EchoArgs(text=f"call {n}", delay=0.3), EchoResult)
        for n in range(100)
    ))

    assert [result.text for result in results] == [f"call {n}" for n in range(100)]
    assert time.monotonic() - started < 3  # one after another would take 30 s


async def test_slow_call_does_not_block_a_fast_one(
    link: Link, controller_service: EchoService
) -> None:
    slow = asyncio.create_task(link.agent.call("hang", Empty()))
    await asyncio.wait_for(controller_service.handler_started.wait(), 2)

    fast = await asyncio.wait_for(link.agent.call("echo", EchoArgs(text="fast"), EchoResult), 1)

    assert fast.text == "fast"
    assert not slow.done()
    slow.cancel()


async def test_unknown_method(link: Link) -> None:
    with pytest.raises(UnknownMethod) as caught:
        await link.agent.call("reboot_everything", Empty())

    assert caught.value.code == "unknown_method"
    assert "reboot_everything" in caught.value.message


async def test_bad_payload_names_the_field(link: Link) -> None:
    class WrongArgs(BaseModel):
        text: list[int]

    with pytest.raises(BadPayload) as caught:
        await link.agent.call("echo", WrongArgs(text=[1]), EchoResult)

    assert caught.value.code == "bad_payload"
    assert "text" in caught.value.message
    assert caught.value.details["errors"][0]["field"] == "text"


async def test_handler_exception_becomes_remote_error_and_is_logged(
    link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="cloudd.rpc")
    request_id_var.set("req-explode")
    with pytest.raises(RemoteError) as caught:
        await link.agent.call("explode", Empty())

    assert caught.value.code == "internal"
    assert caught.value.message == "disk on fire"
    logged = [r for r in caplog.records if "req-explode" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback stays on the serving side
    # the connection survives
    after = await link.agent.call("echo", EchoArgs(text="still here"), EchoResult)
    assert after.text == "still here"


async def test_custom_error_class_round_trips(link: Link) -> None:
    with pytest.raises(InstanceNotFound) as caught:
        await link.agent.call("find_instance", InstanceUpdate(uuid="i-9", vm_state="x"))

    assert caught.value.message == "instance i-9 not found"
    assert caught.value.details == {"uuid": "i-9"}


async def test_unregistered_error_code_arrives_as_rpc_error_with_that_code(link: Link) -> None:
    with pytest.raises(RpcError) as caught:
        await link.agent.call("claim_cores", Empty())

    assert type(caught.value) is RpcError
    assert (caught.value.code, caught.value.details) == ("quota_exceeded", {"limit": 4})


async def test_timeout(link: Link) -> None:
    started = time.monotonic()
    with pytest.raises(RpcTimeout):
        await link.agent.call("hang", Empty(), timeout=0.2)

    assert 0.15 < time.monotonic() - started < 1.5
    # the late answer of an abandoned call does not disturb the next one
    assert (await link.agent.call("echo", EchoArgs(text="next"), EchoResult)).text == "next"


async def test_timeout_travels_to_the_handler(link: Link) -> None:
    default = await link.agent.call("echo", EchoArgs(text="a"), EchoResult)
    explicit = await link.agent.call("echo", EchoArgs(text="b"), EchoResult, timeout=7.5)

    assert (default.timeout, explicit.timeout) == (60.0, 7.5)


async def test_link_drop_fails_pending_calls_at_once(
    link: Link, controller_service: EchoService
) -> None:
    pending = asyncio.create_task(link.agent.call("hang", Empty()))
    await asyncio.wait_for(controller_service.handler_started.wait(), 2)
    started = time.monotonic()

    await link.controller.close()
    with pytest.raises(RpcConnectionLost):
        await asyncio.wait_for(pending, 1)
    assert time.monotonic() - started < 1

    # and a call on the dead link fails at once instead of waiting for its timeout
    with pytest.raises(RpcConnectionLost):
        await asyncio.wait_for(link.agent.call("echo", EchoArgs(text="x"), EchoResult), 0.5)


async def test_request_id_reaches_the_handler_and_comes_back(link: Link) -> None:
    request_id_var.set("req-1234")

    direct = await link.agent.call("echo", EchoArgs(text="a"), EchoResult)
    via_callback = await link.controller.call("echo_via_caller", EchoArgs(text="b"), EchoResult)

    assert (direct.request_id, direct.request_id_in_var) == ("req-1234", "req-1234")
    # controller -> agent handler -> back to the controller: still the same request
    assert (via_callback.side, via_callback.request_id) == ("controller", "req-1234")


async def test_malformed_frames_do_not_kill_the_connection(link: Link) -> None:
    async with link.session.ws_connect(link.url) as raw_ws:
        await raw_ws.send_str("this is not json")
        await raw_ws.send_str(json.dumps({"type": "teleport", "id": "t-1"}))
        await raw_ws.send_str(json.dumps({"type": "call", "id": "c-1", "args": {}}))
        reply = json.loads(await asyncio.wait_for(raw_ws.receive_str(), 2))
        assert reply["type"] == "error"
        reply_2 = json.loads(await asyncio.wait_for(raw_ws.receive_str(), 2))
        assert {reply["id"], reply_2["id"]} == {"t-1", "c-1"}
        by_id = {reply["id"]: reply, reply_2["id"]: reply_2}
        assert by_id["c-1"]["error"]["code"] == "bad_payload"
        assert "method" in by_id["c-1"]["error"]["message"]

        await raw_ws.send_str(json.dumps(
            {"type": "call", "id": "c-2", "method": "echo", "args": {"text": "ok"}}))
        answer = json.loads(await asyncio.wait_for(raw_ws.receive_str(), 2))
        assert (answer["type"], answer["id"], answer["result"]["text"]) == ("result", "c-2", "ok")


async def test_call_on_closed_peer_fails_at_once(link: Link) -> None:
    await link.agent.close()

    with pytest.raises(RpcConnectionLost):
        await asyncio.wait_for(link.agent.call("echo", EchoArgs(text="x"), EchoResult), 0.5)
    with pytest.raises(RpcConnectionLost):
        await link.agent.cast("instance_update", InstanceUpdate(uuid="i", vm_state="x"))


async def test_malformed_reply_fails_the_call_it_answers(link: Link) -> None:
    async with link.session.ws_connect(link.url) as raw_agent:
        controller_end = await asyncio.wait_for(link.accepted.get(), 2)
        pending = asyncio.create_task(controller_end.call("echo", EchoArgs(text="x"), EchoResult))
        call = json.loads(await asyncio.wait_for(raw_agent.receive_str(), 2))
        await raw_agent.send_str(json.dumps({"type": "error", "id": call["id"], "error": "no"}))

        with pytest.raises(BadPayload):
            await asyncio.wait_for(pending, 2)


async def test_result_not_matching_result_type_is_bad_payload(link: Link) -> None:
    class Flavor(BaseModel):
        vcpus: int

    with pytest.raises(BadPayload) as caught:
        await link.agent.call("echo", EchoArgs(text="x"), Flavor)

    assert "vcpus" in caught.value.message


async def test_calls_are_logged_at_debug_without_their_args(
    link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cloudd.rpc")
    request_id_var.set("req-logged")

    await link.agent.call("echo", EchoArgs(text="admin-password-s3cret"), EchoResult)

    messages = [record.getMessage() for record in caplog.records]
    assert any("echo" in m and "req-logged" in m and "served" in m for m in messages)
    assert any("echo" in m and "req-logged" in m and "rpc call" in m for m in messages)
    assert not any("s3cret" in m for m in messages)
