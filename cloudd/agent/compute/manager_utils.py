"""Pure helpers of the compute manager: guest specs from instances, state checks (the readings
the controller shares are in ``cloudd.compute.instance_fields``)."""

from __future__ import annotations

from cloudd.agent.compute.drivers.base import GuestSpec
from cloudd.compute.instance_fields import guest_name
from cloudd.rpc.contracts.compute import ImageInfo
from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance
from cloudd.vocab import power_state, states

# Power states a guest may be in while its row shows this vm_state; after a failed action a
# guest outside this set is in a state nobody asked for, so the instance goes to ERROR.
_CONSISTENT_POWER: dict[str, frozenset[int]] = {
    states.ACTIVE: frozenset({power_state.RUNNING}),
    states.STOPPED: frozenset({power_state.SHUTDOWN, power_state.CRASHED, power_state.NOSTATE}),
    states.PAUSED: frozenset({power_state.PAUSED}),
    states.SUSPENDED: frozenset({power_state.SUSPENDED}),
}


def guest_spec(
    instance: Instance,
    flavor: FlavorSnapshot | None = None,
    image: ImageInfo | None = None,
    kernel: ImageInfo | None = None,
    ramdisk: ImageInfo | None = None,
) -> GuestSpec:
    """What the driver needs to build (or resize to) ``flavor``; default: the row's own sizes."""
    sizes = flavor if flavor is not None else instance.current_flavor()
    if image is None and instance.image_ref:
        image = ImageInfo(id=instance.image_ref)
    return GuestSpec(
        uuid=instance.uuid,
        name=guest_name(instance),
        vcpus=sizes.vcpus,
        memory_mb=sizes.memory_mb,
        root_gb=sizes.root_gb,
        ephemeral_gb=sizes.ephemeral_gb,
        swap_mb=sizes.swap,
        image=image,
        kernel=kernel,
        ramdisk=ramdisk,
        user_data=instance.user_data,
        key_data=instance.key_data,
        hostname=instance.hostname,
        metadata=dict(instance.metadata),
    )


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
