"""The agent's reports survive a lost link (ConductorClient): sent again over the next link
with the same idempotency key, in the order they were made, per instance."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pydantic import BaseModel

from cloudd.agent.conductor_client import ConductorClient, operation
from cloudd.rpc import RpcConnectionLost, RpcPeer
from cloudd.rpc.contracts.conductor import ActionEvent, FaultCreate


class FakeLink:
    """A link that records what it is sent, and drops after ``drop_after`` calls."""

    def __init__(self, drop_after: int | None = None) -> None:
        self.closed = False
        self.sent: list[tuple[str, BaseModel]] = []
        self.drop_after = drop_after

    async def call(self, method: str, request: BaseModel, reply: Any = None) -> None:
        self.sent.append((method, request))
        if self.drop_after is not None and len(self.sent) > self.drop_after:
            self.closed = True
            raise RpcConnectionLost("link dropped")


def peer(link: FakeLink) -> RpcPeer:
    return cast(RpcPeer, link)


def fault(uuid: str, message: str) -> FaultCreate:
    return FaultCreate(uuid=uuid, message=message, host="agent1")


async def test_a_report_made_while_the_link_is_down_goes_over_the_next() -> None:
    client = ConductorClient()
    sending = asyncio.create_task(client.fault_create(fault("u1", "boom")))
    await asyncio.sleep(0.05)
    assert not sending.done()  # queued, not failed
    link = FakeLink()
    client.link_ready(peer(link))
    await asyncio.wait_for(sending, 1)
    ((method, request),) = link.sent
    assert method == "conductor.fault_create"
    assert isinstance(request, FaultCreate) and request.key is not None


async def test_a_report_whose_link_dropped_is_sent_again_with_its_key() -> None:
    first, second = FakeLink(drop_after=0), FakeLink()
    client = ConductorClient()
    client.link_ready(peer(first))
    sending = asyncio.create_task(client.fault_create(fault("u1", "boom")))
    await asyncio.sleep(0.05)
    assert len(first.sent) == 1 and not sending.done()
    client.link_lost()
    client.link_ready(peer(second))
    await asyncio.wait_for(sending, 1)
    assert [request for _, request in second.sent] == [request for _, request in first.sent]


async def test_reports_of_one_instance_keep_their_order_and_operation() -> None:
    client = ConductorClient()

    async def action() -> None:
        with operation():
            await client.action_event(ActionEvent(uuid="u1", request_id="req-1",
                                                  event="compute_stop_instance", phase="start"))
            await client.fault_create(fault("u1", "first"))

    sending = [asyncio.create_task(action()),
               asyncio.create_task(client.fault_create(fault("u1", "second"))),
               asyncio.create_task(client.fault_create(fault("u2", "other")))]
    await asyncio.sleep(0.05)
    link = FakeLink()
    client.link_ready(peer(link))
    await asyncio.wait_for(asyncio.gather(*sending), 1)
    mine = [request for _, request in link.sent if getattr(request, "uuid", None) == "u1"]
    # As made: the event first; "second" was waiting before the action made "first".
    assert [getattr(r, "message", "event") for r in mine] == ["event", "second", "first"]
    event, first = mine[0], mine[2]
    assert isinstance(event, ActionEvent) and isinstance(first, FaultCreate)
    assert event.key is not None and first.key is not None
    assert event.key.operation == first.key.operation  # one action: one operation
    assert (event.key.sequence, first.key.sequence) == (0, 1)
