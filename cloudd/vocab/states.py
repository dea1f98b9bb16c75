"""Nova's instance state model: vm_state, task_state, the API status they map to, and which
states each action may start from (``check_instance_state``)."""

from __future__ import annotations

from typing import Protocol

from cloudd import errors

# vm_state
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"
DELETED = "deleted"
ERROR = "error"

# task_state
SCHEDULING = "scheduling"
NETWORKING = "networking"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_BACKUP = "image_backup"
IMAGE_UPLOADING = "image_uploading"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
REBOOTING = "rebooting"
REBOOTING_HARD = "rebooting_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBUILDING = "rebuilding"
REBUILD_SPAWNING = "rebuild_spawning"
DELETING = "deleting"
SOFT_DELETING = "soft-deleting"
RESTORING = "restoring"
SHELVING = "shelving"
SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"

BUILD_TASKS = (SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING, SPAWNING)
REBUILD_TASKS = (REBUILDING, REBUILD_SPAWNING)
SNAPSHOT_TASKS = (IMAGE_SNAPSHOT, IMAGE_BACKUP, IMAGE_UPLOADING)
SHELVE_TASKS = (SHELVING, SHELVING_IMAGE_PENDING_UPLOAD, SHELVING_IMAGE_UPLOADING)
# A build the conductor places and casts, not yet started by its host: a new server's
# (scheduling) or an offloaded server's unshelve (unshelving, Nova's task state for it).
PLACING_TASKS = (SCHEDULING, UNSHELVING)

_STATUS: dict[str, str] = {
    ACTIVE: "ACTIVE", BUILDING: "BUILD", STOPPED: "SHUTOFF", RESIZED: "VERIFY_RESIZE",
    PAUSED: "PAUSED", SUSPENDED: "SUSPENDED", RESCUED: "RESCUE", ERROR: "ERROR",
    DELETED: "DELETED", SOFT_DELETED: "SOFT_DELETED", SHELVED: "SHELVED",
    SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
}
_ACTIVE_TASK_STATUS: dict[str, str] = {
    REBOOTING: "REBOOT", REBOOTING_HARD: "HARD_REBOOT", REBUILDING: "REBUILD",
    REBUILD_SPAWNING: "REBUILD", RESIZE_PREP: "RESIZE", RESIZE_MIGRATING: "RESIZE",
    RESIZE_FINISH: "RESIZE",
}


# Every status a server list may filter by (Nova's task_and_vm_state_from_status knows these).
KNOWN_STATUSES = frozenset({*_STATUS.values(), *_ACTIVE_TASK_STATUS.values(), "REVERT_RESIZE",
                            "MIGRATING", "PASSWORD"})


def api_status(vm_state: str, task_state: str | None) -> str:
    """The `status` the Compute API shows (Nova's `_STATE_MAP`)."""
    if vm_state == ACTIVE and task_state in _ACTIVE_TASK_STATUS:
        return _ACTIVE_TASK_STATUS[task_state]
    if vm_state == RESIZED and task_state == RESIZE_REVERTING:
        return "REVERT_RESIZE"
    return _STATUS.get(vm_state, "UNKNOWN")


# action -> (allowed vm_states, allowed task_states); None in task states = no task running.
# Current Nova's table (nova-services.md §6.3).
ALLOWED: dict[str, tuple[tuple[str, ...], tuple[str | None, ...]]] = {
    "stop": ((ACTIVE, ERROR), (None,)),
    "start": ((STOPPED,), (None,)),
    "reboot_soft": ((ACTIVE,), (None, REBOOTING)),
    "reboot_hard": ((ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR), (None, REBOOTING, REBOOTING_HARD)),
    "rebuild": ((ACTIVE, STOPPED, ERROR), (None,)),
    "resize": ((ACTIVE, STOPPED), (None,)),
    "confirm_resize": ((RESIZED,), (None,)),
    "revert_resize": ((RESIZED,), (None,)),
    "pause": ((ACTIVE,), (None,)),
    "unpause": ((PAUSED,), (None,)),
    "suspend": ((ACTIVE,), (None,)),
    "resume": ((SUSPENDED,), (None,)),
    "snapshot": ((ACTIVE, STOPPED, PAUSED, SUSPENDED), (None,)),
    # A server that ran, idle: a delete of any other one is a real delete at once.
    "soft_delete": ((ACTIVE, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR), (None,)),
    "restore": ((SOFT_DELETED,), (None,)),
    "force_delete": ((SOFT_DELETED,), (None,)),
    "rescue": ((ACTIVE, STOPPED, ERROR), (None,)),
    "unrescue": ((RESCUED,), (None,)),
    "shelve": ((ACTIVE, STOPPED, PAUSED, SUSPENDED), (None,)),
    "shelve_offload": ((SHELVED,), (None,)),
    "unshelve": ((SHELVED, SHELVED_OFFLOADED), (None,)),
    "trigger_crash_dump": ((ACTIVE, PAUSED, RESCUED, RESIZED, ERROR), (None,)),
    # A rescued guest runs: its consoles are how the rescue is used.
    "console": ((ACTIVE, PAUSED, RESCUED),
                (None, REBOOTING, REBOOTING_HARD, PAUSING, UNPAUSING)),
    "console_output": ((ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR, RESIZED, RESCUED), (
        *BUILD_TASKS, None, REBOOTING, REBOOTING_HARD, PAUSING, UNPAUSING, SUSPENDING, RESUMING,
        POWERING_OFF, POWERING_ON, REBUILDING, REBUILD_SPAWNING, *SNAPSHOT_TASKS)),
}


class InvalidInstanceState(errors.Conflict):
    """The action may not start from the instance's current state (Nova's 409; EC2's
    IncorrectInstanceState)."""

    def __init__(self, action: str, uuid: str, vm_state: str, task_state: str | None) -> None:
        self.action, self.uuid = action, uuid
        super().__init__(
            f"Cannot '{action}' instance {uuid} while it is in vm_state {vm_state}"
            + (f" and task_state {task_state}" if task_state else "")
        )


class HasStates(Protocol):
    """What the state check reads of an instance (the contracts' `Instance` has it; a
    protocol, so this vocabulary imports nothing of the contracts that speak it)."""

    @property
    def uuid(self) -> str: ...
    @property
    def vm_state(self) -> str: ...
    @property
    def task_state(self) -> str | None: ...


def check_state(action: str, instance: HasStates) -> None:
    vm_states, task_states = ALLOWED[action]
    if instance.vm_state not in vm_states or instance.task_state not in task_states:
        raise InvalidInstanceState(
            action.split("_")[0], instance.uuid, instance.vm_state, instance.task_state)
