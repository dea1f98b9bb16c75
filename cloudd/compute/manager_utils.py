"""Pure helpers of the compute manager: guest specs from instance rows, flavors, state checks."""

from __future__ import annotations

import json
from typing import Any

from cloudd.compute import power_state, states
from cloudd.compute.drivers.base import GuestSpec, ImageInfo

# The flavor fields copied into instance columns on resize (Nova's ``_set_instance_info``).
FLAVOR_SIZE_COLUMNS = ("vcpus", "memory_mb", "root_gb", "ephemeral_gb")

# Power states a guest may be in while its row shows this vm_state; after a failed action a
# guest outside this set is in a state nobody asked for, so the instance goes to ERROR.
_CONSISTENT_POWER: dict[str, frozenset[int]] = {
    states.ACTIVE: frozenset({power_state.RUNNING}),
    states.STOPPED: frozenset({power_state.SHUTDOWN, power_state.CRASHED, power_state.NOSTATE}),
    states.PAUSED: frozenset({power_state.PAUSED}),
    states.SUSPENDED: frozenset({power_state.SUSPENDED}),
}


def json_dict(value: Any) -> dict[str, Any]:
    """A JSON column as a dict, whether the row came decoded (conductor) or raw."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str) and value:
        decoded = json.loads(value)
        return dict(decoded) if isinstance(decoded, dict) else {}
    return {}


def guest_name(instance: dict[str, Any]) -> str:
    """The hypervisor label, Nova's ``instance_name_template`` "instance-%08x"."""
    return f"instance-{int(instance['id']):08x}"


def current_flavor(instance: dict[str, Any]) -> dict[str, Any]:
    """The flavor the instance runs with: the flavor column, its sizes from the size columns."""
    sizes = {column: instance[column] for column in FLAVOR_SIZE_COLUMNS if column in instance}
    return {**json_dict(instance.get("flavor")), **sizes}


def guest_spec(
    instance: dict[str, Any],
    flavor: dict[str, Any] | None = None,
    image: ImageInfo | None = None,
    kernel: ImageInfo | None = None,
    ramdisk: ImageInfo | None = None,
) -> GuestSpec:
    """What the driver needs to build (or resize to) ``flavor``; default: the row's own sizes."""
    sizes = flavor if flavor is not None else current_flavor(instance)
    if image is None and instance.get("image_ref"):
        image = ImageInfo(id=str(instance["image_ref"]))
    return GuestSpec(
        uuid=instance["uuid"],
        name=guest_name(instance),
        vcpus=int(sizes["vcpus"]),
        memory_mb=int(sizes["memory_mb"]),
        root_gb=int(sizes.get("root_gb") or 0),
        ephemeral_gb=int(sizes.get("ephemeral_gb") or 0),
        swap_mb=int(sizes.get("swap") or 0),
        image=image,
        kernel=kernel,
        ramdisk=ramdisk,
        user_data=instance.get("user_data"),
        key_data=instance.get("key_data"),
        hostname=instance.get("hostname") or "",
        metadata=json_dict(instance.get("metadata")),
    )


def flavor_columns(flavor: dict[str, Any]) -> dict[str, Any]:
    """Instance column values for running with ``flavor`` (the flavor column keeps it whole)."""
    values: dict[str, Any] = {
        column: int(flavor.get(column) or 0) for column in FLAVOR_SIZE_COLUMNS
    }
    values["flavor"] = dict(flavor)
    if flavor.get("id") is not None:
        values["instance_type_id"] = flavor["id"]
    return values


def vm_state_after_failure(original_vm_state: str, guest_power: int | None) -> str:
    """Nova's rule for a failed action: back to the old vm_state if the guest still matches it,
    ERROR if the guest is gone (``None``) or in a state the old vm_state cannot explain."""
    if guest_power is None:
        return states.ERROR
    allowed = _CONSISTENT_POWER.get(original_vm_state)
    if allowed is not None and guest_power not in allowed:
        return states.ERROR
    return original_vm_state


def tail_lines(text: str, length: int | None) -> str:
    """The last ``length`` lines of ``text`` (all of it when ``length`` is None)."""
    if length is None:
        return text
    if length <= 0:
        return ""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-length:])
