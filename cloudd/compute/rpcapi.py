"""The compute manager's RPC contract: what the controller asks of a host's agent.

Called as ``compute.<name>`` on the agent that owns ``instance.host``. Long actions are casts
(the API answers 202 at once, as Nova does); the agent reports progress through the conductor.
Reads that the API must answer (console output, VNC address) are calls.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cloudd.compute.drivers.base import ImageInfo

PREFIX = "compute."


class BuildInstance(BaseModel):
    """Build one guest on ``node``. ``instance`` is the row as the controller has it."""

    instance: dict[str, Any]
    node: str
    image: ImageInfo | None = None
    kernel: ImageInfo | None = None
    ramdisk: ImageInfo | None = None
    request_id: str
    # One entry per NIC ({"bridge", "mac", "ip", ...}), allocated by the controller.
    network_info: list[dict[str, Any]] = Field(default_factory=list)


class InstanceAction(BaseModel):
    """An action on one guest; ``request_id`` names the instance action it belongs to."""

    uuid: str
    request_id: str = ""


class RebootInstance(InstanceAction):
    hard: bool = False


class RebuildInstance(InstanceAction):
    image: ImageInfo | None = None


class ResizeInstance(InstanceAction):
    new_flavor: dict[str, Any]


class SnapshotInstance(InstanceAction):
    image_id: str


class ConsoleOutputRequest(InstanceAction):
    length: int | None = None


class ConsoleOutput(BaseModel):
    output: str


class VncConsole(BaseModel):
    host: str
    port: int


class HostQuery(BaseModel):
    """A read-only question about the host itself (no instance)."""


class GuestList(BaseModel):
    uuids: list[str]
