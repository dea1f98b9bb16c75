"""Pure readings of an `Instance` that both processes make: the flavor columns of a flavor,
the instance's hypervisor label. The controller (compute API, conductor, views) and the agent's
compute manager use them; they import nothing of either side."""

from __future__ import annotations

from cloudd.rpc.contracts.conductor import AgentInstanceValues
from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance
from cloudd.vocab.instance_name import instance_name

# The flavor fields copied into instance columns on resize (Nova's ``_set_instance_info``).
FLAVOR_SIZE_COLUMNS = ("vcpus", "memory_mb", "root_gb", "ephemeral_gb")


def guest_name(instance: Instance) -> str:
    """The hypervisor label the controller fixed at create (``cloudd.vocab.instance_name``)."""
    return instance_name({"id": instance.id}, instance.system_metadata)


def flavor_columns(flavor: FlavorSnapshot) -> AgentInstanceValues:
    """Instance column values for running with ``flavor`` (the flavor column keeps it whole;
    instance_type_id only when the flavor's row id is known)."""
    sizes = {column: getattr(flavor, column) for column in FLAVOR_SIZE_COLUMNS}
    if flavor.id is not None:
        sizes["instance_type_id"] = flavor.id
    # Not validated again: the controller compares an agent's update with these columns as the
    # flavor has them (cloudd.conductor.authz), and the agent's update validates them when sent.
    return AgentInstanceValues.model_construct(**sizes, flavor=flavor)
