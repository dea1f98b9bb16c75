"""Scheduler errors."""

from __future__ import annotations

NO_VALID_HOST = "No valid host was found."


class NoValidHost(Exception):
    """No host can take (one of) the requested instances.

    `reason` is the full user-visible message (it becomes the instance fault), e.g.
    "No valid host was found. There are not enough hosts available. Filters: ComputeFilter
    3->3, RamFilter 3->0". `filter_counts` holds (filter name, hosts in, hosts out) for each
    filter that ran on the failing pass, empty when filters were not the cause.
    """

    def __init__(
        self, reason: str, filter_counts: list[tuple[str, int, int]] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.filter_counts = filter_counts or []
