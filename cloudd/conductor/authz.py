"""A host acts only for itself: who is calling, which rows it may touch, which values it may write.

The calling host is the link's identity (``ctx.peer.identity``: the host name bound to the
agent's link, from its certificate or its registration). Every ``conductor.*`` and
``network_conductor.*`` method checks what it touches against it before anything is written,
so a false or compromised agent can misreport only its own instances: it can neither read nor
change another host's, take another host's nodes, nor rewrite ownership and quota columns.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from cloudd.compute import instances
from cloudd.compute.instance_fields import flavor_columns
from cloudd.db import Executor
from cloudd.rpc import RpcContext, RpcError
from cloudd.rpc.contracts.conductor import (
    AgentInstanceValues,
    InstanceNotFoundError,
    InstanceNotOnHost,
)
from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance
from cloudd.vocab import states

if TYPE_CHECKING:
    from cloudd.config.models import VncSection
    from cloudd.rpc.contracts.compute import VncConsole

FORBIDDEN = "forbidden"
# What the controller records in system_metadata when a resize starts (cloudd.frontdoor.compute) and
# the agent keeps while resizing, then drops on confirm or revert.
RESIZE_KEYS = ("old_flavor", "new_flavor", "old_vm_state")
FLAVOR_KEYS = ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "flavor", "instance_type_id")
# The task an agent's update must be conditional on to change the flavor columns, and the
# system_metadata key holding the flavor the controller allowed for it.
_FLAVOR_CHANGES = {states.RESIZE_MIGRATING: "new_flavor", states.RESIZE_REVERTING: "old_flavor"}
_RESIZE_ENDS = frozenset({states.RESIZE_CONFIRMING, states.RESIZE_REVERTING})


def forbidden(message: str, **details: Any) -> RpcError:
    return RpcError(message, details, code=FORBIDDEN)


def calling_host(ctx: RpcContext) -> str:
    """The host the link belongs to; a link without one may call nothing but register_host."""
    host = ctx.identity
    if host is None:
        raise forbidden(f"{ctx.method}: this link is not bound to a host (register first)")
    return host


def require_self(ctx: RpcContext, named: str | None) -> str:
    """A host name in the arguments must be the caller's own (None: nothing named)."""
    caller = calling_host(ctx)
    if named is not None and named != caller:
        raise forbidden(f"{ctx.method}: host {caller} may not act for host {named}",
                        caller=caller, named=named)
    return caller


async def own_instance(db: Executor, ctx: RpcContext, uuid: str, *,
                       include_deleted: bool = False) -> Instance:
    """The instance row, if it is on the calling host; ``InstanceNotOnHost`` otherwise (for
    that host the instance is gone: a stale action of a rescheduled build stops quietly)."""
    caller = calling_host(ctx)
    try:
        row = await instances.get(db, uuid, include_deleted=include_deleted)
    except instances.InstanceNotFound as exc:
        raise InstanceNotFoundError(str(exc)) from None
    if row.host != caller:
        raise InstanceNotOnHost(f"{ctx.method}: instance {uuid} is not on host {caller}",
                                {"uuid": uuid, "caller": caller})
    return row


async def finishes_own_event(db: Executor, uuid: str, request_id: str, event: str,
                             caller: str) -> bool:
    """The caller started this event and it is still open: a build that failed here may
    record its end although the instance has been rescheduled to another host."""
    return await instances.event_open_on(db, uuid, request_id, event, caller)


def check_update(row: Instance, values: AgentInstanceValues, caller: str,
                 expected_task_state: list[str | None] | None) -> None:
    """The columns an agent may write (the ones it gave in ``values``) checked against the
    row: launched_on is the caller, and flavor columns and system_metadata change only as the
    resize the controller recorded allows. A column given as None is checked like any value."""
    given = values.model_fields_set
    if "launched_on" in given and values.launched_on != caller:
        raise forbidden(f"launched_on must be the calling host {caller}")
    expected = set(expected_task_state) if expected_task_state is not None else None
    if any(key in given for key in FLAVOR_KEYS):
        _check_flavor_change(row, values, expected)
    if "system_metadata" in given:
        _check_system_metadata(row, values.system_metadata, expected)


def _check_flavor_change(row: Instance, values: AgentInstanceValues,
                         expected: set[str | None] | None) -> None:
    """Only the flavor the controller recorded for the resize (or the revert) in progress;
    the update must be conditional on that task, so it cannot apply at any other time."""
    task = next(iter(expected)) if expected is not None and len(expected) == 1 else None
    key = _FLAVOR_CHANGES.get(task or "")
    recorded = row.system_metadata.get(key or "")
    if key is None or not isinstance(recorded, dict):
        raise forbidden("an agent may change the flavor columns only to finish or revert a"
                        " resize (the update must expect task_state resize_migrating or"
                        " resize_reverting)")
    allowed = flavor_columns(FlavorSnapshot.model_validate(recorded))
    wrong = sorted(k for k in FLAVOR_KEYS
                   if k in values.model_fields_set and getattr(values, k) != getattr(allowed, k))
    if wrong:
        raise forbidden(f"flavor columns {', '.join(wrong)} differ from the flavor recorded"
                        f" for this {'resize' if key == 'new_flavor' else 'revert'}")


def _check_system_metadata(row: Instance, new: Any, expected: set[str | None] | None) -> None:
    """system_metadata stays the controller's: an agent may only drop the resize keys when a
    resize ends (confirm or revert)."""
    current = row.system_metadata
    if not isinstance(new, dict):
        raise forbidden("system_metadata must stay a mapping")
    if new == current:
        return
    ending = expected is not None and bool(expected & _RESIZE_ENDS)
    dropped = set(current) - set(new)
    kept_same = all(current.get(k) == v for k, v in new.items()) and set(new) <= set(current)
    if not (ending and kept_same and dropped <= set(RESIZE_KEYS)):
        raise forbidden("an agent may not change system_metadata (it may only drop the resize"
                        " keys when a resize is confirmed or reverted)")


class ConsoleTargetRefused(RpcError):
    """An agent named a console the proxy must not relay to (not its address, or a port out of
    the [vnc] range): the API answers 409 instead of handing out a token for it."""

    code = "console_target_refused"


def check_console_target(vnc: VncSection, host: str, link_address: str | None,
                         target: VncConsole) -> None:
    """A VNC console is on the reporting host itself: the address its agent's link comes from
    (so never the controller's own services, unless the agent runs on the controller), at a
    port in ``[vnc] vncserver_port_min..max``. Unknown link address: refused (fail closed)."""
    try:
        reported = ipaddress.ip_address(target.host)
        source = ipaddress.ip_address(link_address or "")
    except ValueError:
        raise ConsoleTargetRefused(
            f"host {host} reported console address {target.host!r}; the link comes from"
            f" {link_address!r}: both must be IP addresses") from None
    if reported != source:
        raise ConsoleTargetRefused(
            f"host {host} reported a console on {reported}, but its agent connects from {source}")
    if not vnc.vncserver_port_min <= target.port <= vnc.vncserver_port_max:
        raise ConsoleTargetRefused(
            f"host {host} reported console port {target.port}, outside the VNC port range"
            f" {vnc.vncserver_port_min}-{vnc.vncserver_port_max}")
