"""A host acts only for itself: a false host on the agent listener, and a compromised agent on
its own link, are refused everything beyond their own instances and their state machine, and the
rows stay as they were. On SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from harness.cloud import Cloud
from harness.rows import Row

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.network import ipam
from cloudd.rpc import RpcError
from cloudd.vocab import states

from .hostile import HostileLink, hostile_link, node


async def active_instance(cloud: Cloud) -> Row:
    (row,), _ = await cloud.boot("victim")
    return await cloud.wait_state(row["uuid"], states.ACTIVE)


def own_link(cloud: Cloud) -> HostileLink:
    """agent1's real link, as a compromised agent1 would use it."""
    assert cloud.agent.conductor.peer is not None
    return HostileLink(cloud.agent.conductor.peer)


# What another host's things answer: refused, or (an instance) not found on the caller.
NOT_YOURS = ("forbidden", "instance_not_on_host")


async def refused(link: HostileLink, method: str, code: str | tuple[str, ...], **args: Any
                  ) -> RpcError:
    with pytest.raises(RpcError) as caught:
        await link.call(method, **args)
    codes = (code,) if isinstance(code, str) else code
    assert caught.value.code in codes, caught.value
    return caught.value


async def service_row(cloud: Cloud, host: str) -> dict[str, Any] | None:
    return await cloud.db.fetchrow("SELECT * FROM services WHERE host = $1", host)


async def test_an_unregistered_host_may_only_register_itself(cloud: Cloud) -> None:
    victim = await active_instance(cloud)
    async with hostile_link(cloud) as link:
        for method, args in [
            ("instance_get", {"uuid": victim["uuid"]}),
            ("instances_on_host", {"host": "agent1"}),
            ("heartbeat", {"host": "agent1"}),
            ("instance_update", {"uuid": victim["uuid"], "values": {"power_state": 0}}),
            ("instance_destroyed", {"uuid": victim["uuid"]}),
            ("network_conductor.get_host_state", {"host": "agent1"}),
        ]:
            await refused(link, method, NOT_YOURS, **args)
    assert await cloud.instance(victim["uuid"]) == victim
    assert cloud.host_agents() == ["agent1"]


async def test_a_host_cannot_touch_another_hosts_instance(cloud: Cloud) -> None:
    victim = await active_instance(cloud)
    uuid_ = victim["uuid"]
    faults = await cloud.db.fetchval("SELECT COUNT(*) FROM instance_faults")
    events = await cloud.db.fetchval("SELECT COUNT(*) FROM instance_action_events")
    async with hostile_link(cloud, register_as="evil") as link:
        not_here = "instance_not_on_host"
        error = await refused(link, "instance_get", not_here, uuid=uuid_)
        assert "user_data" not in error.message
        await refused(link, "instance_update", not_here, uuid=uuid_,
                      values={"vm_state": states.ERROR})
        await refused(link, "instance_destroyed", not_here, uuid=uuid_, host="evil")
        await refused(link, "instance_offloaded", not_here, uuid=uuid_, host="evil")
        await refused(link, "fault_create", not_here, uuid=uuid_, message="x", host="evil")
        await refused(link, "action_event", not_here, uuid=uuid_, request_id="r", host="evil",
                      event="compute_stop_instance", phase="start")
        await refused(link, "build_failed", not_here, uuid=uuid_, host="evil", reason="x")
        await refused(link, "network_conductor.deallocate_for_instance_rpc", not_here,
                      uuid=uuid_, host="evil")
        # Naming the victim's host in the arguments does not help.
        await refused(link, "build_failed", "forbidden", uuid=uuid_, host="agent1", reason="x")
        await refused(link, "instance_destroyed", "forbidden", uuid=uuid_, host="agent1")
        await refused(link, "instance_offloaded", "forbidden", uuid=uuid_, host="agent1")
        # Its own (empty) host is all it sees.
        assert (await link.call("instances_on_host", host="evil"))["instances"] == []
    assert await cloud.instance(uuid_) == victim
    assert await cloud.db.fetchval("SELECT COUNT(*) FROM instance_faults") == faults
    assert await cloud.db.fetchval("SELECT COUNT(*) FROM instance_action_events") == events
    assert uuid_ in await cloud.agent.driver.list_instances()


async def test_a_host_cannot_report_for_another_host(cloud: Cloud) -> None:
    before = await service_row(cloud, "agent1")
    node_before = await cloud.db.fetchrow(
        "SELECT * FROM compute_nodes WHERE hypervisor_hostname = 'agent1'")
    async with hostile_link(cloud, register_as="evil") as link:
        await refused(link, "heartbeat", "forbidden", host="agent1")
        await refused(link, "node_update", "forbidden", host="agent1",
                      node=node("agent1").model_dump())
        await refused(link, "node_update", "forbidden", host="evil",  # not its node
                      node=node("agent1").model_dump())
        await refused(link, "instances_on_host", "forbidden", host="agent1")
        await refused(link, "network_conductor.get_host_state", "forbidden", host="agent1")
        await refused(link, "register_host", "forbidden", host="agent1",
                      nodes=[node("agent1").model_dump()])
    # A new name cannot take agent1's node either.
    async with hostile_link(cloud, certified_as="thief") as link:
        await refused(link, "register_host", "forbidden", host="thief",
                      nodes=[node("agent1").model_dump()])
    assert await service_row(cloud, "thief") is None
    after = await service_row(cloud, "agent1")
    assert after is not None and before is not None
    assert after["report_count"] >= before["report_count"]  # only agent1's own heartbeats
    node_after = await cloud.db.fetchrow(
        "SELECT * FROM compute_nodes WHERE hypervisor_hostname = 'agent1'")
    assert node_after is not None and node_before is not None
    assert (node_after["host"], node_after["vcpus"]) == (node_before["host"], node_before["vcpus"])


@pytest.mark.parametrize("values", [
    {"project_id": "someone-else"}, {"user_id": "u2"}, {"host": "evil"}, {"node": "evil"},
    {"user_data": "I2Nsb3VkLWNvbmZpZw=="}, {"key_data": "ssh-rsa AAAA"}, {"deleted": 1},
    {"vcpus": 0}, {"memory_mb": 1, "vcpus": 0}, {"vm_state": states.DELETED},
    {"task_state": states.DELETING}, {"power_state": 99}, {"launched_on": "evil"},
    {"vm_state": states.SHELVED_OFFLOADED}, {"task_state": states.UNSHELVING},
    {"system_metadata": {"shelved_image_id": "another-image"}},
    {"system_metadata": {"old_flavor": {"vcpus": 0}}},
])
async def test_an_agent_changes_only_state_machine_fields(cloud: Cloud,
                                                          values: dict[str, Any]) -> None:
    victim = await active_instance(cloud)
    with pytest.raises(RpcError) as caught:
        await own_link(cloud).call("instance_update", uuid=victim["uuid"], values=values)
    assert caught.value.code in ("bad_payload", "forbidden"), caught.value
    assert await cloud.instance(victim["uuid"]) == victim


async def test_only_an_offloading_instance_is_offloaded(cloud: Cloud) -> None:
    """Its own host cannot free an instance that is not being offloaded (it would leave the
    host's claim released while the guest runs)."""
    victim = await active_instance(cloud)
    await refused(own_link(cloud), "instance_offloaded", "unexpected_task_state",
                  uuid=victim["uuid"], host="agent1")
    assert await cloud.instance(victim["uuid"]) == victim
    assert victim["uuid"] in await cloud.agent.driver.list_instances()


async def test_flavor_columns_only_as_the_recorded_resize(cloud: Cloud) -> None:
    victim = await active_instance(cloud)
    tiny = {"vcpus": victim["vcpus"], "memory_mb": victim["memory_mb"]}
    # In a resize's own task, but not the flavor the controller recorded for it.
    await cloud.db.execute("UPDATE instances SET task_state = $1 WHERE uuid = $2",
                           states.RESIZE_MIGRATING, victim["uuid"])
    before = await cloud.instance(victim["uuid"])
    await refused(own_link(cloud), "instance_update", "forbidden", uuid=victim["uuid"],
                  values={"vcpus": 0, "memory_mb": 1}, expected_task_state=[states.RESIZE_MIGRATING])
    assert await cloud.instance(victim["uuid"]) == before
    assert {k: before[k] for k in tiny} == tiny


async def test_a_host_reports_leases_only_of_its_own_guests(cloud: Cloud) -> None:
    victim = await active_instance(cloud)
    manager = cloud.host.config.network.network_manager
    await ipam.create_networks(cloud.db, manager, "private", "10.77.0.0/24", bridge="br77")
    (nic,) = await ipam.allocate_for_instance(cloud.db, manager, victim, "agent1")
    lease = {"action": "add", "mac": nic.mac, "ip": nic.ip}
    async with hostile_link(cloud, register_as="evil") as link:
        await refused(link, "network_conductor.dhcp_event", "forbidden", **lease)
        await refused(link, "network_conductor.dhcp_event", "forbidden", **{**lease, "action": "del"})
        leased = "SELECT leased, instance_uuid FROM fixed_ips WHERE address = $1"
        assert dict(await cloud.db.fetchrow(leased, nic.ip) or {}) == {
            "leased": 0, "instance_uuid": victim["uuid"]}
        await own_link(cloud).call("network_conductor.dhcp_event", **lease)  # its own guest
        assert (await cloud.db.fetchrow(leased, nic.ip) or {})["leased"] == 1
        # FlatDHCP single-host: the gateway host's dnsmasq serves guests on every host.
        await cloud.db.execute("UPDATE networks SET host = 'evil' WHERE id = (SELECT network_id"
                               " FROM fixed_ips WHERE address = $1)", nic.ip)
        await link.call("network_conductor.dhcp_event", **{**lease, "action": "del"})
        assert (await cloud.db.fetchrow(leased, nic.ip) or {})["leased"] == 0


async def test_console_targets_are_the_hosts_own_vnc_ports(cloud: Cloud) -> None:
    from cloudd.conductor.authz import ConsoleTargetRefused

    victim = await active_instance(cloud)
    driver = cloud.agent.driver
    assert isinstance(driver, FakeDriver)
    console = await cloud.api.vnc_console(victim)  # the normal case: loopback agent, port 59xx
    assert console.host == "127.0.0.1"
    guest = driver._guests[victim["uuid"]]
    for listen, port in [("127.0.0.1", cloud.cfg.rpc.port), ("127.0.0.1", 22),
                         ("10.9.9.9", console.port), ("localhost", console.port)]:
        driver.vnc_listen, guest.vnc_port = listen, port
        with pytest.raises(ConsoleTargetRefused):
            await cloud.api.vnc_console(victim)


async def test_normal_host_reports_still_pass(cloud: Cloud) -> None:
    """The checks let the real flows through: heartbeats, resource reports, lease events."""
    before = await service_row(cloud, "agent1")
    assert before is not None
    link = own_link(cloud)
    await link.call("heartbeat", host="agent1")
    await link.call("node_update", host="agent1", node=node("agent1").model_dump())
    after = await service_row(cloud, "agent1")
    assert after is not None and after["report_count"] > before["report_count"]
    assert await cloud.db.fetchval(
        "SELECT vcpus FROM compute_nodes WHERE hypervisor_hostname = 'agent1'") == 64
    assert time.time() - after["last_seen_up"] < 60


def well_formed_calls(victim: str) -> dict[str, dict[str, Any]]:
    """Valid arguments for every agent-facing method (register_host aside): a new method must
    be added here, saying what another host may do with it (nothing)."""
    instance = {"uuid": victim}
    return {
        "conductor.heartbeat": {"host": "agent1"},
        "conductor.node_update": {"host": "agent1", "node": node("agent1").model_dump()},
        "conductor.instance_get": instance,
        "conductor.instances_on_host": {"host": "agent1"},
        "conductor.instance_update": {**instance, "values": {"power_state": 0}},
        "conductor.action_event": {**instance, "request_id": "r", "event": "e", "phase": "start"},
        "conductor.fault_create": {**instance, "message": "m"},
        "conductor.build_failed": {**instance, "host": "agent1", "reason": "r"},
        "conductor.instance_destroyed": instance,
        "conductor.instance_offloaded": instance,
        "network_conductor.get_host_state": {"host": "agent1"},
        "network_conductor.dhcp_event": {"action": "add", "mac": "fa:16:3e:00:00:01",
                                         "ip": "10.0.0.5"},
        "network_conductor.deallocate_for_instance_rpc": instance,
    }


async def test_every_agent_method_refuses_another_hosts_things(cloud: Cloud) -> None:
    from cloudd.conductor.service import ConductorService

    victim = await active_instance(cloud)
    calls = well_formed_calls(victim["uuid"])
    served = set(cloud.host.get(ConductorService).dispatcher.methods) - {"conductor.register_host"}
    assert served == set(calls), "a new agent-facing method: scope it and list it here"
    async with hostile_link(cloud) as link:  # enrolled as "evil", not registered
        for method, args in calls.items():
            await refused(link, method, NOT_YOURS, **args)
    assert await cloud.instance(victim["uuid"]) == victim
