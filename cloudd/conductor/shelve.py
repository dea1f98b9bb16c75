"""The controller's side of shelving: an offload frees the host, an unshelve's end deletes the
shelved image (Nova's compute manager does both on the host; here the controller owns the
rows, the claims and the image store, so a host only reports that its guest is gone or up).
Rescue's record of its image ends the same way, when the host reports the unrescue."""

from __future__ import annotations

import logging
from typing import Any

from cloudd.compute import instances
from cloudd.compute.instances import Instance
from cloudd.conductor.build import NetworkAllocator, flavor_of
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.image import records as image_records
from cloudd.scheduler.service import SchedulerService
from cloudd.vocab import states

LOG = logging.getLogger(__name__)
# system_metadata keys of a shelved server (Nova's names); the API records them at shelve.
SHELVED_KEYS = ("shelved_at", "shelved_image_id", "shelved_host")
RESCUE_IMAGE_KEY = "rescue_image_ref"  # the image a rescue boots, which its host may fetch


async def offload(host: ServiceHost, row: Instance) -> bool:
    """The shelved row leaves its node (shelved_offloaded, no host), that node's claim is
    released, and the host's network stops serving the guest's addresses (they stay the
    server's, as a Neutron port's do, for the unshelve). Whether this call did it."""
    db = host.get(DatabaseService).db
    node, old_host = row.node or "", row.host

    async def detach() -> bool:
        return await instances.offload_from_node(db, row.uuid, node)

    if not node or row.task_state != states.SHELVING_OFFLOADING:
        return False
    if not await host.get(SchedulerService).detach_and_release(node, flavor_of(row), detach):
        return False
    network = host.find(NetworkAllocator)
    if network is not None and old_host:
        await network.detach_from_host(row.uuid, old_host)
    LOG.info("instance %s offloaded from %s", row.uuid, old_host)
    return True


async def finish_unshelve(host: ServiceHost, before: Instance, after: Instance) -> None:
    """A shelved server that its host reports running again is unshelved: its shelved image
    goes (Nova deletes it at the end of an unshelve) and so do the shelve's records."""
    if before.vm_state not in (states.SHELVED, states.SHELVED_OFFLOADED) or \
            after.vm_state != states.ACTIVE:
        return
    db = host.get(DatabaseService).db
    image_id = before.system_metadata.get("shelved_image_id")
    kept = {k: v for k, v in after.system_metadata.items() if k not in SHELVED_KEYS}
    try:
        await instances.update(db, after.uuid, {"system_metadata": kept})
    except instances.InstanceNotFound:
        pass
    if isinstance(image_id, str):
        await delete_shelved_image(host, image_id)


async def finish_unrescue(host: ServiceHost, before: Instance, after: Instance) -> None:
    """A rescued server its host reports out of rescue: its rescue image is no longer one the
    host may fetch for it."""
    if before.vm_state != states.RESCUED or after.vm_state == states.RESCUED or \
            RESCUE_IMAGE_KEY not in after.system_metadata:
        return
    kept = {k: v for k, v in after.system_metadata.items() if k != RESCUE_IMAGE_KEY}
    try:
        await instances.update(host.get(DatabaseService).db, after.uuid,
                               {"system_metadata": kept})
    except instances.InstanceNotFound:
        pass


async def delete_shelved_image(host: ServiceHost, image_id: str) -> None:
    """The snapshot a shelve made, deleted with its data (already gone: nothing to do)."""
    db = host.get(DatabaseService).db
    try:
        await image_records.delete(db, image_records.image_store(host.config), image_id)
    except Exception:  # the server is fine without it: the image stays, the owner may delete it
        LOG.exception("cannot delete the shelved image %s", image_id)


def shelved_record(row: Instance, image_id: str, now: float) -> dict[str, Any]:
    """system_metadata as a shelve starts (Nova's keys; shelved_at is when it was asked)."""
    return {**row.system_metadata, "shelved_at": now, "shelved_image_id": image_id,
            "shelved_host": row.host}
