"""Request bodies of the servers API (Nova's JSON schemas, additionalProperties false)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from cloudd.api.keys import HOST_KEY

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
MetaText = Annotated[str, StringConstraints(strict=True, max_length=255)]
Metadata = dict[Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)],
                MetaText]
MAX_USER_DATA = 65535
# Server tags (2.26; on create from 2.52): Nova's parameter_types.tag and per-server limit.
MAX_TAGS = 50
MAX_TAG_LENGTH = 60
TAG_PATTERN = r"^[^,/]*$"
Tag = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_TAG_LENGTH,
                                       pattern=TAG_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def check_name(value: str) -> str:
    if value != value.strip() or not value.strip():
        raise ValueError("name may not be blank or have leading or trailing whitespace")
    return value


def check_ip(value: str | None, family: int) -> str | None:
    if value in (None, ""):
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value} is not a valid IPv{family} address") from None
    if address.version != family:
        raise ValueError(f"{value} is not a valid IPv{family} address")
    return str(address)  # normalised, as Nova echoes it


def check_user_data(value: str | None) -> str | None:
    """Base64 of at most MAX_USER_DATA bytes (create's and rebuild's user_data)."""
    if value is None:
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("user_data is not valid base64") from None
    if len(decoded) > MAX_USER_DATA:
        raise ValueError(f"user_data is longer than {MAX_USER_DATA} bytes")
    return value


# Nova's utils.generate_password: no look-alike characters (0/O, 1/l/I), at least one of each
# group, CONF.password_length (12) long.
PASSWORD_GROUPS = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")
PASSWORD_LENGTH = 12


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A new server's (or rebuilt server's) admin password, as Nova makes it."""
    rng = secrets.SystemRandom()
    chars = [rng.choice(group) for group in PASSWORD_GROUPS]
    everything = "".join(PASSWORD_GROUPS)
    chars += [rng.choice(everything) for _ in range(length - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


def answers_password(request: web.Request) -> bool:
    """[api] enable_instance_password: create and rebuild show adminPass only when set."""
    return bool(request.config_dict[HOST_KEY].config.api.enable_instance_password)


class NetworkRequest(Strict):
    uuid: str | None = None
    port: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


class SecurityGroupRef(Strict):
    name: str


class BlockDevice(BaseModel):
    model_config = ConfigDict(extra="allow")
    uuid: str | None = None
    source_type: str | None = None
    destination_type: str | None = None
    boot_index: int | str | None = None


class ServerCreate(Strict):
    name: Name
    imageRef: str = ""
    flavorRef: Annotated[str, StringConstraints(min_length=1)] | int
    min_count: int = Field(1, ge=1)
    max_count: int | None = Field(None, ge=1)
    return_reservation_id: bool = False
    key_name: str | None = None
    user_data: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    availability_zone: str | None = None
    networks: Literal["auto", "none"] | list[NetworkRequest] | None = None
    security_groups: list[SecurityGroupRef] = Field(default_factory=list)
    block_device_mapping_v2: list[BlockDevice] = Field(default_factory=list)
    config_drive: bool | str | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    adminPass: str | None = None
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(None, alias="OS-DCF:diskConfig")
    personality: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[Tag] | None = Field(None, max_length=MAX_TAGS)

    _name = field_validator("name")(check_name)

    _ipv4 = field_validator("accessIPv4")(lambda v: check_ip(v, 4))
    _ipv6 = field_validator("accessIPv6")(lambda v: check_ip(v, 6))

    _user_data = field_validator("user_data")(lambda v: check_user_data(v))


class ServerCreateBody(Strict):
    server: ServerCreate
    scheduler_hints: dict[str, Any] = Field(default_factory=dict, alias="os:scheduler_hints")
    scheduler_hints_legacy: dict[str, Any] = Field(default_factory=dict,
                                                   alias="OS-SCH-HNT:scheduler_hints")


class ServerUpdate(Strict):
    name: Name | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(None, alias="OS-DCF:diskConfig")

    _name = field_validator("name")(lambda v: v if v is None else check_name(v))

    _ipv4 = field_validator("accessIPv4")(lambda v: check_ip(v, 4))
    _ipv6 = field_validator("accessIPv6")(lambda v: check_ip(v, 6))


class ServerUpdateBody(Strict):
    server: ServerUpdate


class MetadataBody(Strict):
    metadata: Metadata


class MetaItemBody(Strict):
    meta: Metadata
