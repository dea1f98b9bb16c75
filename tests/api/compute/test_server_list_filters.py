"""The server list's column filters as Nova's: vm_state/task_state (repeatable), uuid and
user_id exactly, the others as regular expressions; who may use which (reservation_id for all,
the owner's others from 2.83, the rest for admins; a filter the caller may not use is
ignored); repeatable status with its 400 from 2.38; changes-before (2.66)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import action, active_server, running_cloud, wait_status
from harness.api import listed_names as names

S = "/compute/v2.1/servers"


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path,
                unreleased_microversions: None) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path, database={"connection": db_url},
                             api={"max_microversion": "2.83"}) as cloud:
        yield cloud


async def two_servers(cloud: Cloud) -> tuple[dict[str, object], dict[str, object]]:
    """"run" ACTIVE and "off" SHUTOFF."""
    run, off = await active_server(cloud, "run"), await active_server(cloud, "off")
    await action(cloud, str(off["id"]), {"os-stop": None})
    await wait_status(cloud, str(off["id"]), "SHUTOFF")
    return run, off


async def test_state_and_exact_filters(cloud: Cloud) -> None:
    run, _ = await two_servers(cloud)
    assert await names(cloud, "vm_state=stopped") == ["off"]
    assert sorted(await names(cloud, "vm_state=stopped&vm_state=active")) == ["off", "run"]
    assert await names(cloud, "power_state=4") == ["off"]
    assert await names(cloud, f"uuid={run['id']}") == ["run"]
    assert await names(cloud, f"uuid={str(run['id'])[:8]}") == []  # exact, not a pattern
    assert sorted(await names(cloud, f"user_id={cloud.admin['user_id']}")) == ["off", "run"]
    assert await names(cloud, "user_id=someone-else") == []
    assert await names(cloud, "hostname=^of") == ["off"]  # a pattern searched in the column
    year = datetime.now(UTC).year
    assert sorted(await names(cloud, f"created_at=^{year}-")) == ["off", "run"]
    assert await names(cloud, "availability_zone=nowhere") == []
    code, body, _ = await cloud.call("GET", f"{S}?hostname=(a")
    assert code == 400 and "hostname filter" in body["badRequest"]["message"]


async def test_who_may_filter_by_what(cloud: Cloud) -> None:
    member, _ = await cloud.user_token("filterer", ("member", "reader"))
    first = await active_server(cloud, "mine-1", token=member)
    await active_server(cloud, "mine-2", token=member)
    reservation = await cloud.db.fetchval(
        "SELECT reservation_id FROM instances WHERE uuid = $1", first["id"])
    assert await names(cloud, f"reservation_id={reservation}", token=member) == ["mine-1"]
    # Below 2.83 an owner's key_name/vm_state filters are dropped: both are listed.
    assert sorted(await names(cloud, "vm_state=stopped", token=member)) == ["mine-1", "mine-2"]
    code, body, _ = await cloud.call("GET", f"{S}/detail?vm_state=stopped", token=member,
                                     version="2.83")
    assert code == 200 and body["servers"] == []
    code, body, _ = await cloud.call("GET", f"{S}/detail?availability_zone=nova",
                                     token=member, version="2.83")
    assert sorted(s["name"] for s in body["servers"]) == ["mine-1", "mine-2"]
    # uuid and hostname stay an admin's: ignored for the owner, at any version.
    code, body, _ = await cloud.call("GET", f"{S}/detail?uuid=nope&hostname=zzz",
                                     token=member, version="2.83")
    assert sorted(s["name"] for s in body["servers"]) == ["mine-1", "mine-2"]


async def test_status_is_repeatable_and_checked_from_2_38(cloud: Cloud) -> None:
    await two_servers(cloud)
    assert sorted(await names(cloud, "status=ACTIVE&status=shutoff")) == ["off", "run"]
    assert await names(cloud, "status=SHUTOFF") == ["off"]
    assert await names(cloud, "status=bogus") == []  # below 2.38: nothing matches
    code, body, _ = await cloud.call("GET", f"{S}?status=bogus", version="2.38")
    assert code == 400 and body["badRequest"]["message"] == "Invalid status value"
    code, body, _ = await cloud.call("GET", f"{S}?status=SHELVED_OFFLOADED", version="2.38")
    assert code == 200 and body["servers"] == []


async def test_changes_before_with_deleted_servers(cloud: Cloud) -> None:
    old = await active_server(cloud, "old")
    await asyncio.sleep(1.1)
    middle = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    await asyncio.sleep(0.1)
    await active_server(cloud, "new")
    code, body, _ = await cloud.call("GET", f"{S}?changes-before={middle}", version="2.66")
    assert code == 200 and [s["name"] for s in body["servers"]] == ["old"]
    code, body, _ = await cloud.call("GET", f"{S}?changes-before={middle}", version="2.65")
    assert sorted(s["name"] for s in body["servers"]) == ["new", "old"]  # not before 2.66
    code, _, _ = await cloud.call("DELETE", f"{S}/{old['id']}")
    await wait_status(cloud, str(old["id"]), "DELETED")
    now = datetime.fromtimestamp(time.time() + 1, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    code, body, _ = await cloud.call("GET", f"{S}/detail?changes-before={now}", version="2.66")
    listed = {s["name"]: s["status"] for s in body["servers"]}
    assert listed == {"old": "DELETED", "new": "ACTIVE"}
    code, body, _ = await cloud.call(
        "GET", f"{S}?changes-since={now}&changes-before={middle}", version="2.66")
    assert code == 400 and "changes-since" in body["badRequest"]["message"]
