"""The agent's faults, with real `cloudd serve` and `cloudd agent` processes: killed in the
middle of a stop, and its websocket cut in the middle of a call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.cloud import wait_for
from harness.config import free_port
from harness.processes import Processes


async def active_server(procs: Processes) -> str:
    status, body = await procs.boot("victim")
    assert status == 202, body
    server_id = str(body["server"]["id"])
    await wait_status(procs, server_id, "ACTIVE")
    return server_id


async def server(procs: Processes, server_id: str) -> dict[str, Any]:
    status, body = await procs.call("GET", f"/compute/v2.1/servers/{server_id}")
    assert status == 200, body
    return dict(body["server"])


async def wait_status(procs: Processes, server_id: str, want: str, limit: float = 20) -> None:
    async def reached() -> bool:
        found = await server(procs, server_id)
        assert found["status"] != "ERROR", found
        return bool(found["status"] == want and found["OS-EXT-STS:task_state"] is None)

    await wait_for(reached, limit, f"{server_id} to be {want}")


async def test_agent_killed_mid_stop_ends_shutoff(processes: Processes) -> None:
    """Nova's _init_instance: a stop cut short by the agent's death is retried at its start."""
    procs = processes
    await procs.start_cloud("power_off=5")
    server_id = await active_server(procs)

    status, _ = await procs.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                 json={"os-stop": None})
    assert status == 202
    assert (await server(procs, server_id))["OS-EXT-STS:task_state"] == "powering-off"
    await asyncio.sleep(0.5)  # the agent is inside the driver's power_off
    procs.kill(procs.agent)

    procs.start_agent("")
    await wait_status(procs, server_id, "SHUTOFF")
    found = await server(procs, server_id)
    assert found["OS-EXT-STS:vm_state"] == "stopped"
    assert found["OS-EXT-STS:power_state"] in (0, 4)  # NOSTATE (the fake guest died) / SHUTDOWN
    # The server is usable again: it starts.
    status, _ = await procs.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                 json={"os-start": None})
    assert status == 202


class CuttableLink:
    """A TCP relay between the agent and the controller's listener that the test can cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Both sides' sockets reset at once, as when a cable is pulled and TCP gives up."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def link(processes: Processes) -> AsyncIterator[CuttableLink]:
    relay = CuttableLink(processes.rpc_port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


async def test_link_cut_mid_call_fails_promptly_and_the_agent_reconnects(
        processes: Processes, link: CuttableLink) -> None:
    procs = processes
    await procs.start_cloud("get_console_output=3", controller_url=f"wss://127.0.0.1:{link.port}/agent")
    server_id = await active_server(procs)
    console = f"/compute/v2.1/servers/{server_id}/action"

    call = asyncio.create_task(procs.call("POST", console, json={"os-getConsoleOutput": {}}))
    await asyncio.sleep(1.0)  # the call waits on the agent's console read
    assert not call.done()
    cut_at = time.monotonic()
    link.cut()
    status, body = await asyncio.wait_for(call, 5)
    assert time.monotonic() - cut_at < 2.0  # the API did not wait for the call's timeout
    assert status == 503, body
    assert body["serviceUnavailable"]["code"] == 503
    assert "compute host" in body["serviceUnavailable"]["message"]

    # The agent reconnects by itself; the same call then succeeds over the new link.
    await wait_for(procs.agent_connected, 20, "the agent to reconnect")
    status, body = await procs.call("POST", console, json={"os-getConsoleOutput": {}})
    assert status == 200, body
    assert (await server(procs, server_id))["status"] == "ACTIVE"
