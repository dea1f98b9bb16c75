"""The service host: dependency order, reverse stop, supervised tasks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cloudd.config import CloudConfig
from cloudd.core import Service, ServiceHost


class Recorder(Service):
    def __init__(self, host: ServiceHost, name: str, depends: tuple[str, ...], log: list[str]) -> None:
        super().__init__(host)
        self.name, self.depends, self.log = name, depends, log

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def make_host(policy: str = "restart") -> ServiceHost:
    cfg = CloudConfig()
    cfg.default.task_restart_policy = policy  # type: ignore[assignment]
    cfg.default.shutdown_timeout = 2
    return ServiceHost(cfg)


async def test_start_in_dependency_order_stop_in_reverse() -> None:
    host, log = make_host(), list[str]()
    host.add(Recorder(host, "api", ("conductor", "database"), log))
    host.add(Recorder(host, "conductor", ("database",), log))
    host.add(Recorder(host, "database", (), log))
    await host.start()
    assert log == ["start database", "start conductor", "start api"]
    assert host.health().status == "ok"
    await host.stop()
    assert log[3:] == ["stop api", "stop conductor", "stop database"]
    assert all(s.state == "stopped" for s in host.services.values())


async def test_healthz_reports_each_services_given_fields_only() -> None:
    """The /healthz body: an error only when there is one, a detail only once it is known
    (the database's dialect), one given as None still there (the agent's first heartbeat)."""
    from cloudd.agent.service import AgentHealth
    from cloudd.db.service import DatabaseService

    host = make_host()
    host.add(Recorder(host, "conductor", (), []))
    database = DatabaseService(host)
    database.state, database.error = "failed", "cannot connect"
    host.add(database)
    host.services["conductor"].state = "running"
    report = host.health()
    report.services["agent"] = AgentHealth(state="running", host="a1", connected=False,
                                           controller_url="wss://c:8776", last_heartbeat=None)
    body = report.as_json()
    assert isinstance(body["uptime"], float)
    assert {**body, "uptime": 0} == {
        "status": "degraded", "name": "cloudd", "uptime": 0, "services": {
            "conductor": {"state": "running"},
            "database": {"state": "failed", "error": "cannot connect"},
            "agent": {"state": "running", "host": "a1", "connected": False,
                      "controller_url": "wss://c:8776", "last_heartbeat": None}}}


async def test_circular_and_missing_dependencies_are_refused() -> None:
    host = make_host()
    host.add(Recorder(host, "a", ("b",), []))
    host.add(Recorder(host, "b", ("a",), []))
    with pytest.raises(ValueError, match="circular"):
        host.start_order()
    host2 = make_host()
    host2.add(Recorder(host2, "a", ("ghost",), []))
    with pytest.raises(ValueError, match="unknown 'ghost'"):
        host2.start_order()


async def test_crashed_task_is_logged_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    host = make_host("restart")
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 2:
            raise RuntimeError("boom")
        done.set()
        await asyncio.sleep(3600)

    with caplog.at_level(logging.ERROR):
        host.create_task(flaky, "flaky")
        await asyncio.wait_for(done.wait(), 5)
    assert len(runs) == 2
    assert any("task flaky crashed" in r.message and r.exc_info for r in caplog.records)
    await host.stop()


async def test_crashed_task_with_exit_policy_stops_the_process() -> None:
    host = make_host("exit")
    svc = Recorder(host, "svc", (), [])
    host.add(svc)

    async def broken() -> None:
        raise RuntimeError("fatal")

    async def runner() -> int:
        def start_broken() -> None:
            host.create_task(broken, "broken", svc)

        return await host.run(ready=start_broken)

    code = await asyncio.wait_for(runner(), 10)
    assert code == 1
    assert svc.state == "stopped"


async def test_periodic_task_survives_a_failing_run() -> None:
    host = make_host()
    calls: list[int] = []

    async def tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first run fails")

    host.periodic(0.01, tick, "tick", initial_delay=0)
    for _ in range(200):
        if len(calls) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(calls) >= 3
    await host.stop()


async def test_stop_cancels_service_tasks_and_times_out_stuck_stop() -> None:
    host = make_host()
    host.config.default.shutdown_timeout = 0.2

    class Stuck(Service):
        name = "stuck"

        async def stop(self) -> None:
            await asyncio.sleep(10)

    svc = Stuck(host)
    host.add(svc)
    await host.start()
    forever = host.create_task(lambda: asyncio.sleep(3600), "forever", svc)
    await asyncio.wait_for(host.stop(), 5)
    assert forever.cancelled()
    assert svc.state == "stopped"
