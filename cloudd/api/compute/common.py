"""Helpers every compute handler uses: the caller, the ComputeAPI, loading a visible server."""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

from cloudd.api.auth import REQUEST_ID_KEY, get_context, request_database
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound
from cloudd.api.keys import HOST_KEY
from cloudd.api.paging import parse_limit_text
from cloudd.compute import instances
from cloudd.compute.instances import Instance
from cloudd.conductor.service import HostUnavailable
from cloudd.db import Database
from cloudd.frontdoor.compute import ComputeAPI
from cloudd.identity.policy import RequestContext

T = TypeVar("T")


def context(request: web.Request) -> RequestContext:
    return get_context(request)


def database(request: web.Request) -> Database:
    return request_database(request)


def compute_api(request: web.Request) -> ComputeAPI:
    return ComputeAPI(request.config_dict[HOST_KEY])


def request_id(request: web.Request) -> str:
    return str(request[REQUEST_ID_KEY])


def is_uuid(value: str) -> bool:
    try:
        return str(uuidlib.UUID(value)) == value.lower()
    except ValueError:
        return False


async def load_server(request: web.Request, server_id: str | None = None) -> instances.Instance:
    """The server if the caller may see it; 404 otherwise (Nova hides other projects' servers)."""
    server_id = server_id or request.match_info["server_id"]
    ctx = context(request)
    not_found = NotFound(f"Instance {server_id} could not be found.")
    if not is_uuid(server_id):
        raise not_found
    try:
        row = await instances.get(database(request), server_id.lower())
    except instances.InstanceNotFound:
        raise not_found from None
    if not ctx.is_admin and row.project_id != ctx.project_id:
        raise not_found
    ctx.require_read(row.project_id)
    return row


async def load_server_to_act(request: web.Request, *, lock_checked: bool = True) \
        -> instances.Instance:
    """A server the caller may change: member of its project (or admin), and not locked."""
    row = await load_server(request)
    ctx = context(request)
    ctx.require_act(row.project_id)
    if lock_checked and row.locked and not ctx.is_admin:
        raise Conflict(f"Instance {row.uuid} is locked")
    return row


def parse_limit(query: Any, maximum: int = 1000) -> int:
    try:
        return parse_limit_text(query.get("limit"), maximum, maximum)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def parse_time(text: str, name: str) -> float:
    """An ISO 8601 timestamp as epoch seconds (naive means UTC)."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"Invalid {name} value: {text}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def now() -> float:
    return time.time()


async def engine_call(request: web.Request, row: Instance, action: str, **extra: Any) -> None:
    """ComputeAPI.action on `row` for this request's caller, its refusals mapped."""
    await refusals_mapped(row, compute_api(request).action(
        row, action, request_id(request), context(request), **extra))


async def refusals_mapped(row: Instance, call: Awaitable[T]) -> T:
    """A ComputeAPI call on `row`, an unreachable host as Nova's 409 with its message (an
    InvalidInstanceState, a Conflict, and a QuotaExceeded, a Forbidden, leave as they are)."""
    try:
        return await call
    except HostUnavailable as exc:
        raise Conflict(f"Compute host of instance {row.uuid} is unavailable: {exc}") from None
