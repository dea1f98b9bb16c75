"""An agent's instance update travels as the columns it gave, nothing else: a column left out
must not reach the controller as None (it would be written NULL), one given as None must."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloudd.compute.instance_fields import flavor_columns
from cloudd.rpc.contracts.conductor import AgentInstanceValues, InstanceUpdate
from cloudd.rpc.contracts.instance import FlavorSnapshot
from cloudd.vocab import states


def test_the_wire_carries_the_given_columns_only() -> None:
    update = InstanceUpdate(uuid="i-1", values=AgentInstanceValues(
        vm_state=states.STOPPED, task_state=None))
    sent = update.model_dump(mode="json")
    assert sent["values"] == {"vm_state": states.STOPPED, "task_state": None}
    received = InstanceUpdate.model_validate(sent).values
    assert received.columns() == {"vm_state": states.STOPPED, "task_state": None}


def test_a_flavor_arrives_typed_with_its_columns() -> None:
    flavor = FlavorSnapshot(id=7, flavorid="2", vcpus=2, memory_mb=2048, root_gb=20)
    values = AgentInstanceValues(vm_state=states.RESIZED).merged(flavor_columns(flavor))
    sent = InstanceUpdate(uuid="i-1", values=values).model_dump(mode="json")
    received = InstanceUpdate.model_validate(sent).values
    assert received.columns() == {
        "vm_state": states.RESIZED, "vcpus": 2, "memory_mb": 2048, "root_gb": 20,
        "ephemeral_gb": 0, "flavor": flavor, "instance_type_id": 7}


def test_merged_lets_the_later_columns_win_and_validates() -> None:
    values = AgentInstanceValues(vm_state=states.ACTIVE).merged(
        AgentInstanceValues(vm_state=states.STOPPED, task_state=None))
    assert values.columns() == {"vm_state": states.STOPPED, "task_state": None}
    with pytest.raises(ValidationError):
        values.merged(AgentInstanceValues.model_construct(vm_state=states.DELETED))


@pytest.mark.parametrize("values", [{"host": "evil"}, {"vm_state": states.DELETED},
                                    {"power_state": 99}, {"vcpus": -1}])
def test_what_an_agent_may_not_write_is_refused_on_arrival(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        InstanceUpdate.model_validate({"uuid": "i-1", "values": values})
