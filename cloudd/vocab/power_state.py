"""Guest power states, as the hypervisor sees them (Nova's ``nova/compute/power_state.py``).

Plain ints because they are stored in ``instances.power_state`` and sent over RPC as they are.
BUILDING (9) is left out: current Nova removed it and no driver reports it.
"""

NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

STATE_MAP: dict[int, str] = {
    NOSTATE: "pending",
    RUNNING: "running",
    PAUSED: "paused",
    SHUTDOWN: "shutdown",
    CRASHED: "crashed",
    SUSPENDED: "suspended",
}


def name(state: int) -> str:
    """Nova's display name for a power state; unknown values read as 'unknown(<n>)'."""
    return STATE_MAP.get(state, f"unknown({state})")
