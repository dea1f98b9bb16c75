"""RunInstances, DescribeInstances, Terminate/Reboot/Start/StopInstances, GetConsoleOutput,
DescribeInstanceAttribute: the Compute API's servers (compute.api.ComputeAPI) under EC2 names."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request
from cloudd.api.ec2.instance_views import (
    TERMINATED_VISIBLE_FOR,
    check_filters,
    ec2_state,
    group_items,
    groups_of,
    instance_items,
    matches,
    reservations,
)
from cloudd.api.ec2.launch import launch
from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.compute import instances
from cloudd.compute.instances import Instance
from cloudd.conductor.service import HostUnavailable
from cloudd.frontdoor.compute import ComputeAPI
from cloudd.vocab import states

T = TypeVar("T")


def compute(req: Ec2Request) -> ComputeAPI:
    return ComputeAPI(req.host)


async def load(req: Ec2Request, ec2: str, *, terminated_ok: bool = False) -> Instance:
    """The project's instance an EC2 id names (recently terminated ones too when asked)."""
    uuid = await ids.uuid_for(req.db, ids.INSTANCE, ec2)
    try:
        row = await instances.get(req.db, uuid, include_deleted=True)
    except instances.InstanceNotFound:
        raise ids.not_found(ids.INSTANCE, ec2) from None
    if row.project_id != req.project_id:
        raise ids.not_found(ids.INSTANCE, ec2)
    if row.deleted and not (terminated_ok and _recent(row)):
        raise ids.not_found(ids.INSTANCE, ec2)
    return row


def _recent(row: Instance) -> bool:
    return (row.deleted_at or 0) > time.time() - TERMINATED_VISIBLE_FOR


async def load_many(req: Ec2Request, name: str = "InstanceId", *,
                    terminated_ok: bool = False) -> list[tuple[str, Instance]]:
    wanted = req.params.strings(name)
    if not wanted:
        raise missing(name)
    return [(ec2, await load(req, ec2, terminated_ok=terminated_ok)) for ec2 in wanted]


def _not_locked(req: Ec2Request, row: Instance) -> None:
    if row.locked and not req.context.is_admin:
        raise Ec2Error("OperationNotPermitted", f"Instance {row.uuid} is locked")


async def run_instances(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    rows, groups = await launch(req)
    reservation = await reservations(req, rows)
    return {**reservation[0], "groupSet": await group_items(req.db, groups)}


async def describe_instances(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    filters = req.params.filters()
    check_filters(filters)
    if wanted := req.params.strings("InstanceId"):
        rows = [row for _, row in [(e, await load(req, e, terminated_ok=True)) for e in wanted]]
    else:
        rows = await instances.project_rows(req.db, req.project_id,
                                            time.time() - TERMINATED_VISIBLE_FOR)
    if filters:
        items = await instance_items(req, rows)
        rows = [row for row, item in zip(rows, items, strict=True) if matches(filters, item, row)]
    return {"reservationSet": await reservations(req, rows)}


async def _state_change(req: Ec2Request, ec2: str, before: Instance) -> dict[str, Any]:
    after = await instances.get(req.db, before.uuid, include_deleted=True)
    return {"instanceId": ec2, "currentState": ec2_state(after),
            "previousState": ec2_state(before)}


async def terminate_instances(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    changes = []
    for ec2, row in await load_many(req, terminated_ok=True):
        if not row.deleted:
            _not_locked(req, row)
            await compute(req).delete(row, req.request_id, req.context)
        changes.append(await _state_change(req, ec2, row))
    return {"instancesSet": changes}


async def _power(req: Ec2Request, action: str, done_state: str) -> dict[str, Any]:
    req.require_act()
    changes = []
    for ec2, row in await load_many(req):
        _not_locked(req, row)
        # Already there (or on the way): AWS answers with the state, not an error.
        if row.vm_state != done_state and row.task_state not in (
                states.POWERING_OFF, states.POWERING_ON):
            await _engine(req, row, action)
        changes.append(await _state_change(req, ec2, row))
    return {"instancesSet": changes}


async def _engine(req: Ec2Request, row: Instance, action: str, **extra: Any) -> None:
    await refusals_mapped(compute(req).action(row, action, req.request_id, req.context, **extra))


async def refusals_mapped(call: Awaitable[T]) -> T:
    """A ComputeAPI call on an instance, an unreachable host as EC2's IncorrectInstanceState
    with EC2's message (InvalidInstanceState: Ec2Error.from_kind)."""
    try:
        return await call
    except HostUnavailable as exc:
        raise Ec2Error("IncorrectInstanceState",
                       f"The instance's host {exc} cannot be reached") from None


async def stop_instances(req: Ec2Request) -> dict[str, Any]:
    return await _power(req, "stop", states.STOPPED)


async def start_instances(req: Ec2Request) -> dict[str, Any]:
    return await _power(req, "start", states.ACTIVE)


async def reboot_instances(req: Ec2Request) -> dict[str, Any]:
    """Always a hard reboot, as Nova's EC2 API did."""
    req.require_act()
    for _, row in await load_many(req):
        _not_locked(req, row)
        await _engine(req, row, "reboot", hard=True)
    return {"return": True}


async def get_console_output(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    ec2 = req.params.required("InstanceId")
    row = await load(req, ec2)
    try:
        output = await compute(req).console_output(row, None)
    except HostUnavailable as exc:
        raise Ec2Error("IncorrectInstanceState", f"host {exc} cannot be reached") from None
    return {"instanceId": ec2, "timestamp": _now(),
            "output": base64.b64encode(output.encode("utf-8", "replace")).decode()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


async def describe_instance_attribute(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    ec2 = req.params.required("InstanceId")
    attribute = req.params.required("Attribute")
    row = await load(req, ec2)
    item = (await instance_items(req, [row]))[0]
    simple: dict[str, Any] = {
        "instanceType": item["instanceType"], "kernel": item["kernelId"],
        "ramdisk": item["ramdiskId"], "rootDeviceName": item["rootDeviceName"],
        "disableApiTermination": row.locked,
        "instanceInitiatedShutdownBehavior": "stop", "userData": row.user_data,
        "sourceDestCheck": True, "ebsOptimized": False, "enaSupport": False,
    }
    body: dict[str, Any] = {"instanceId": ec2}
    if attribute in simple:
        value = simple[attribute]
        body[attribute] = {"value": value} if value is not None else {}
    elif attribute == "groupSet":
        body["groupSet"] = await group_items(req.db, (await groups_of(req.db, [row.uuid]))[
            row.uuid])
    elif attribute == "blockDeviceMapping":
        body["blockDeviceMapping"] = []
    elif attribute == "productCodes":
        body["productCodes"] = []
    else:
        raise invalid(f"Value ({attribute}) for parameter attribute is invalid. "
                      "Unknown attribute.")
    return body
