"""The compute API's part of shelving that is not a cast to a host: an offloaded server's
unshelve (scheduled and built again by the conductor, from its shelved image), the shelved
servers due to be offloaded, and the shelved image of a server being deleted."""

from __future__ import annotations

from typing import Any

from cloudd import errors
from cloudd.compute import hosts, instances
from cloudd.compute.instances import Instance, SavedRequest
from cloudd.conductor.build import flavor_of
from cloudd.conductor.service import ConductorService
from cloudd.conductor.shelve import delete_shelved_image
from cloudd.core import ServiceHost
from cloudd.db import Executor
from cloudd.db.service import DatabaseService
from cloudd.scheduler.request import RequestSpec, RetrySpec
from cloudd.vocab import states


class UnknownZone(errors.BadRequest):
    """Nova's 400 for an unshelve into a zone no compute host is in."""

    def __init__(self, zone: str) -> None:
        super().__init__(f"The requested availability zone is not available: {zone}")


async def schedule_unshelve(host: ServiceHost, row: Instance, request_id: str, ctx: Any,
                            availability_zone: str | None) -> None:
    """task_state unshelving with the request spec the conductor places it by (the create's,
    its retries forgotten, in `availability_zone` if given), then the build in the background."""
    db = host.get(DatabaseService).db
    states.check_state("unshelve", row)
    if availability_zone is not None and availability_zone not in \
            await hosts.availability_zones(db):
        raise UnknownZone(availability_zone)
    saved = row.request_spec
    spec = RequestSpec.model_validate(saved.spec or {"flavor": flavor_of(row)})
    spec.instance_uuids, spec.num_instances, spec.retry = [row.uuid], 1, RetrySpec()
    if availability_zone is not None:
        spec.availability_zone = availability_zone
    request = SavedRequest(spec=spec.model_dump(), request_id=request_id,
                           networks=saved.networks)
    try:
        await instances.update(db, row.uuid, {"task_state": states.UNSHELVING,
                                              "request_spec": request},
                               expected_task_state=[None],
                               expected_vm_state=[states.SHELVED_OFFLOADED])
    except instances.UnexpectedState:
        fresh = await instances.get(db, row.uuid)
        raise states.InvalidInstanceState("unshelve", row.uuid, fresh.vm_state,
                                          fresh.task_state) from None
    await instances.start_action(db, row.uuid, "unshelve", request_id,
                                 getattr(ctx, "user_id", None), row.project_id)
    host.get(ConductorService).schedule_build([row.uuid], spec, request_id)


async def shelved_before(db: Executor, cutoff: float) -> list[Instance]:
    """Idle shelved servers (not offloaded) shelved before `cutoff`."""
    return [row for row in await instances.in_state(db, states.SHELVED)
            if row.task_state is None
            and float(row.system_metadata.get("shelved_at") or 0) < cutoff]


async def forget_shelved_image(host: ServiceHost, row: Instance) -> None:
    """A shelved server being deleted: the image it was shelved into goes with it."""
    image_id = row.system_metadata.get("shelved_image_id")
    if row.vm_state in (states.SHELVED, states.SHELVED_OFFLOADED) and isinstance(image_id, str):
        await delete_shelved_image(host, image_id)
