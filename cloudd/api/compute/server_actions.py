"""POST /servers/{id}/action: power, pause/suspend, rebuild, resize, lock, console, reset."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, StringConstraints, field_validator

from cloudd.api.auth import public_url
from cloudd.api.compute import consoles, server_rebuild, server_rescue, server_shelve
from cloudd.api.compute.common import (
    compute_api,
    context,
    database,
    engine_call,
    load_server,
    load_server_to_act,
    refusals_mapped,
    request_id,
)
from cloudd.api.compute.errors import (
    BadRequest,
    Conflict,
    NotFound,
    read_json,
    validate,
)
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_models import Metadata, Name, Strict
from cloudd.compute import instances
from cloudd.conductor.service import HostUnavailable
from cloudd.image.for_compute import Backup
from cloudd.vocab import states

ActionHandler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


class Reboot(Strict):
    type: Literal["SOFT", "HARD", "soft", "hard"]


class Resize(Strict):
    flavorRef: str | int
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(None, alias="OS-DCF:diskConfig")


class ConsoleOutput(Strict):
    length: int | str | None = None


class ResetState(Strict):
    state: Literal["error", "active"]


class Lock(Strict):
    # Nova's lock_v2_73: a non-empty reason of at most 255 characters.
    locked_reason: Annotated[str, StringConstraints(strict=True, min_length=1,
                                                    max_length=255)] | None = None

    @field_validator("locked_reason")
    @classmethod
    def _given_is_a_string(cls, value: str | None) -> str:
        """Runs only when the key is given: an explicit null is not a string to Nova either."""
        if value is None:
            raise ValueError("None is not of type 'string'")
        return value


def _empty(value: Any) -> None:
    if value not in (None, {}):
        raise BadRequest("This action takes no arguments.")


def _simple(action: str) -> ActionHandler:
    async def handle(request: web.Request, args: Any) -> web.StreamResponse:
        _empty(args)
        row = await load_server_to_act(request)
        await engine_call(request, row, action)
        return web.Response(status=202)

    return handle


async def reboot(request: web.Request, args: Any) -> web.StreamResponse:
    body = validate(Reboot, args)
    row = await load_server_to_act(request)
    await engine_call(request, row, "reboot", hard=body.type.upper() == "HARD")
    return web.Response(status=202)


async def resize(request: web.Request, args: Any) -> web.StreamResponse:
    body = validate(Resize, args)
    row = await load_server_to_act(request)
    ctx = context(request)
    new_flavor = await compute_api(request).resize_flavor(row, body.flavorRef, ctx.project_id,
                                                          ctx.is_admin)  # CreateRefused: a 400
    await engine_call(request, row, "resize", new_flavor=new_flavor)
    return web.Response(status=202)


def _resize_step(action: str, status: int) -> ActionHandler:
    async def handle(request: web.Request, args: Any) -> web.StreamResponse:
        _empty(args)
        row = await load_server_to_act(request)
        await engine_call(request, row, action)
        return web.Response(status=status)

    return handle


async def console_output(request: web.Request, args: Any) -> web.StreamResponse:
    body = validate(ConsoleOutput, args or {})
    length: int | None = None
    if body.length is not None:
        try:
            length = int(body.length)
        except ValueError:
            raise BadRequest("length must be an integer") from None
        if length < -1:
            raise BadRequest("length must be -1 or greater")
        length = None if length == -1 else length
    row = await load_server_to_act(request, lock_checked=False)
    try:
        log = await compute_api(request).console_output(row, None)
    except HostUnavailable as exc:
        raise Conflict(f"Compute host is unavailable: {exc}") from None
    return web.json_response({"output": last_lines(log, length)})


def last_lines(log: str, length: int | None) -> str:
    """Nova's tail: the last `length` elements of log.split('\\n')."""
    if length is None:
        return log
    if length == 0:
        return ""
    return "\n".join(log.split("\n")[-length:])


async def lock(request: web.Request, args: Any) -> web.StreamResponse:
    body = validate(Lock, args or {})
    if "locked_reason" in body.model_fields_set and not request_version(request).at_least("2.73"):
        raise BadRequest("Invalid input for field/attribute lock. Additional properties are "
                         "not allowed ('locked_reason' was unexpected)")
    row = await load_server_to_act(request, lock_checked=False)
    ctx = context(request)
    await instances.update(database(request), row.uuid, {
        "locked": 1, "locked_by": "admin" if ctx.is_admin else "owner",
        "locked_reason": body.locked_reason})
    await instances.start_action(database(request), row.uuid, "lock", request_id(request),
                                 ctx.user_id, row.project_id)
    return web.Response(status=202)


async def unlock(request: web.Request, args: Any) -> web.StreamResponse:
    _empty(args)
    row = await load_server_to_act(request, lock_checked=False)
    ctx = context(request)
    if row.locked and row.locked_by == "admin" and not ctx.is_admin:
        raise Conflict(f"Instance {row.uuid} was locked by an administrator")
    await instances.update(database(request), row.uuid, {
        "locked": 0, "locked_by": None, "locked_reason": None})
    await instances.start_action(database(request), row.uuid, "unlock", request_id(request),
                                 ctx.user_id, row.project_id)
    return web.Response(status=202)


async def reset_state(request: web.Request, args: Any) -> web.StreamResponse:
    context(request).require_admin()
    body = validate(ResetState, args)
    row = await load_server(request)
    vm_state = states.ERROR if body.state == "error" else states.ACTIVE
    await instances.update(database(request), row.uuid, {"vm_state": vm_state, "task_state": None})
    return web.Response(status=202)


async def trigger_crash_dump(request: web.Request, args: Any) -> web.StreamResponse:
    """2.17: an NMI to the guest (404 below 2.17, as Nova's versioned action; its body is
    null)."""
    if not request_version(request).at_least("2.17"):
        raise NotFound("The resource could not be found.")
    if args is not None:
        raise BadRequest("Invalid input for field/attribute trigger_crash_dump. "
                         f"Value: {args!r}. {args!r} is not of type 'null'")
    row = await load_server_to_act(request)
    await refusals_mapped(row, compute_api(request).trigger_crash_dump(
        row, request_id(request), context(request)))
    return web.Response(status=202)


class CreateImage(Strict):
    name: Name
    metadata: Metadata = Field(default_factory=dict)


async def create_image(request: web.Request, args: Any) -> web.StreamResponse:
    """Snapshot: a queued image now, filled by the agent's upload; 202 with the image's
    Location (below 2.45) or {"image_id"} (2.45 and later), as Nova answers."""
    body = validate(CreateImage, args)
    row = await load_server_to_act(request)
    image = await refusals_mapped(row, compute_api(request).snapshot(
        row, body.name, body.metadata, request_id(request), context(request)))
    return _image_made(request, image.id, with_location=True)


def _image_made(request: web.Request, image_id: str, with_location: bool) -> web.Response:
    if request_version(request).at_least("2.45"):
        return web.json_response({"image_id": image_id}, status=202)
    if not with_location:
        return web.Response(status=202)
    location = f"{public_url(request)}/image/v2/images/{image_id}"
    return web.Response(status=202, headers={"Location": location})


class CreateBackup(Strict):
    name: Name
    backup_type: Annotated[str, StringConstraints(max_length=255)]
    # Nova's non_negative_integer: an integer, or a string of digits
    rotation: Annotated[int, Field(ge=0, le=2**31 - 1)] | Annotated[
        str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
    metadata: Metadata = Field(default_factory=dict)


async def create_backup(request: web.Request, args: Any) -> web.StreamResponse:
    """A snapshot of type backup; once it is uploaded, the server's backups of that type
    beyond `rotation` are deleted, oldest first. 202 with the image's Location (below 2.45,
    and only for a rotation above 0, as Nova) or {"image_id"} (2.45 and later)."""
    body = validate(CreateBackup, args)
    backup = Backup(backup_type=body.backup_type, rotation=int(body.rotation))
    row = await load_server_to_act(request)
    image = await refusals_mapped(row, compute_api(request).snapshot(
        row, body.name, body.metadata, request_id(request), context(request), backup))
    return _image_made(request, image.id, with_location=backup.rotation > 0)


async def force_delete(request: web.Request, args: Any) -> web.StreamResponse:
    """A soft-deleted server goes at once (409 in any other state)."""
    _empty(args)
    row = await load_server_to_act(request)
    await refusals_mapped(row, compute_api(request).force_delete(
        row, request_id(request), context(request)))
    return web.Response(status=202)


ACTIONS: dict[str, ActionHandler] = {
    "reboot": reboot, "os-stop": _simple("stop"), "os-start": _simple("start"),
    "pause": _simple("pause"), "unpause": _simple("unpause"), "suspend": _simple("suspend"),
    "resume": _simple("resume"), "rebuild": server_rebuild.rebuild, "resize": resize,
    "confirmResize": _resize_step("confirmResize", 204),
    "revertResize": _resize_step("revertResize", 202),
    "lock": lock, "unlock": unlock, "os-getConsoleOutput": console_output,
    "os-resetState": reset_state, "createImage": create_image, "createBackup": create_backup,
    "restore": _simple("restore"), "forceDelete": force_delete,
    "os-getVNCConsole": consoles.get_vnc_console, "trigger_crash_dump": trigger_crash_dump,
    "shelve": server_shelve.shelve, "shelveOffload": server_shelve.shelve_offload,
    "unshelve": server_shelve.unshelve, "rescue": server_rescue.rescue,
    "unrescue": server_rescue.unrescue,
}


async def action(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("An action body must be an object with exactly one action.")
    (name, args), = body.items()
    handler = ACTIONS.get(name)
    if handler is None:
        raise BadRequest(f"There is no such action: {name}")
    return await handler(request, args)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/servers/{{server_id}}/action", action)
