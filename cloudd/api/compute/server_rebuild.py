"""The rebuild action: a server boots a (new) image again, with Nova's per-microversion body.

Nova's schema is additionalProperties false, a key added in a later microversion being a 400
below it: `description` from 2.19, `key_name` from 2.54, `user_data` from 2.57 (which also drops
`personality`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import Field, StringConstraints, field_validator

from cloudd.api.compute import server_tags, servers, views
from cloudd.api.compute.common import (
    compute_api,
    context,
    database,
    engine_call,
    is_uuid,
    load_server_to_act,
)
from cloudd.api.compute.errors import BadRequest, validate
from cloudd.api.compute.microversion import APIVersion, request_version
from cloudd.api.compute.server_models import (
    Metadata,
    Name,
    Strict,
    answers_password,
    check_ip,
    check_name,
    check_user_data,
    generate_password,
)
from cloudd.api.network import addresses as net_addresses
from cloudd.compute import instances
from cloudd.frontdoor.compute_create import check_metadata_quota

T = TypeVar("T")


def _not_null(value: T | None) -> T:
    """Runs only on keys given: Nova's name and metadata are not nullable."""
    if value is None:
        raise ValueError("None is not a valid value")
    return value


class Rebuild(Strict):
    imageRef: str
    name: Name | None = None
    metadata: Metadata | None = None
    adminPass: str | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    preserve_ephemeral: bool = False
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(None, alias="OS-DCF:diskConfig")
    personality: list[dict[str, Any]] | None = None
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    key_name: Name | None = None
    user_data: str | None = None

    _name = field_validator("name")(lambda v: check_name(_not_null(v)))
    _metadata = field_validator("metadata")(lambda v: _not_null(v))
    _ipv4 = field_validator("accessIPv4")(lambda v: check_ip(v, 4))
    _ipv6 = field_validator("accessIPv6")(lambda v: check_ip(v, 6))
    _user_data = field_validator("user_data")(lambda v: check_user_data(v))


# body key -> (first microversion that takes it, first that no longer does)
_VERSIONED: dict[str, tuple[str, str | None]] = {
    "description": ("2.19", None), "key_name": ("2.54", None), "user_data": ("2.57", None),
    "personality": ("2.1", "2.57"),
}


def _check_keys_for(version: APIVersion, given: set[str]) -> None:
    for key, (since, until) in _VERSIONED.items():
        if key in given and (not version.at_least(since)
                             or (until is not None and version.at_least(until))):
            raise BadRequest("Invalid input for field/attribute rebuild. Additional properties "
                             f"are not allowed ('{key}' was unexpected)")


def _columns(body: Rebuild) -> dict[str, Any]:
    """The instance columns the request sets (a key given as null clears its column)."""
    given = body.model_fields_set
    columns: dict[str, Any] = {}
    for key, column in (("name", "name"), ("metadata", "metadata"),
                        ("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6"),
                        ("description", "description"), ("user_data", "user_data")):
        if key in given:
            columns[column] = getattr(body, key)
    return columns


async def rebuild(request: web.Request, args: Any) -> web.StreamResponse:
    body = validate(Rebuild, args)
    version = request_version(request)
    _check_keys_for(version, body.model_fields_set)
    if body.personality:  # dropped silently before: say that cloudd injects no files
        raise BadRequest(servers.NO_PERSONALITY)
    image_id = body.imageRef.rstrip("/").rsplit("/", 1)[-1]
    if not is_uuid(image_id):
        raise BadRequest(f"Invalid imageRef provided: {image_id} is not a UUID.")
    row = await load_server_to_act(request)
    ctx = context(request)
    api = compute_api(request)
    # The same checks as a create's: an image (and its kernel/ramdisk) the project may boot.
    image = await api.rebuild_image(row, image_id, ctx.is_admin)
    if body.metadata is not None:
        check_metadata_quota(body.metadata)
    changes = _columns(body)
    if "key_name" in body.model_fields_set:  # KeyPairNotFound: a 400
        changes.update(await api.rebuild_key(ctx.user_id, body.key_name))
    await engine_call(request, row, "rebuild", image=image, changes=changes,
                      preserve_ephemeral=body.preserve_ephemeral)
    row = await instances.get(database(request), row.uuid)
    if version.at_least("2.75"):
        view = await servers.detailed_view(request, row)
        view.pop("OS-EXT-SRV-ATTR:user_data", None)
        view["user_data"] = row.user_data
    else:
        basic = await net_addresses.server_addresses(database(request), [row.uuid],
                                                     detailed=False)
        tags = await server_tags.tags_of(request, [row]) or {}
        view = views.server_basic(request, row, version, basic[row.uuid], tags.get(row.uuid))
        if version.at_least("2.54"):
            view["key_name"] = row.key_name
        if version.at_least("2.57"):
            view["user_data"] = row.user_data
    if answers_password(request):
        view["adminPass"] = body.adminPass or generate_password()
    return web.json_response({"server": view}, status=202)
