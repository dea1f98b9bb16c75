"""Failed password logins: a growing delay, then a temporary lockout (Keystone's
lockout_failure_attempts / lockout_duration), per user and per client address.

Kept in this process's memory, bounded: a controller restart forgets the failures, which
costs an attacker a restart they cannot cause. User names that do not exist are counted like
real ones, so a lockout says nothing about whether a user exists.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from cloudd.config.models import IdentitySection

MAX_DELAY = 8.0       # seconds: the doubling delay stops growing here
MAX_RECORDS = 20000   # distinct users and addresses remembered; the oldest are dropped first


@dataclass
class _Failures:
    count: int
    last: float           # monotonic time of the latest failure
    locked_until: float   # monotonic; 0 while not locked


class LoginThrottle:
    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self._records: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, key: str, now: float, duration: float) -> _Failures | None:
        record = self._records.get(key)
        if record is not None and now - record.last > duration and now >= record.locked_until:
            del self._records[key]  # old failures are forgotten once the lockout has passed
            return None
        return record

    def locked_for(self, keys: tuple[str, ...], cfg: IdentitySection) -> float:
        """Seconds left of the longest lockout among `keys` (0: none is locked)."""
        now = time.monotonic()
        left = 0.0
        for key in keys:
            record = self._current(key, now, cfg.lockout_duration)
            if record is not None:
                left = max(left, record.locked_until - now)
        return left

    def failed(self, limits: dict[str, int], cfg: IdentitySection) -> float:
        """Count a failure for each key (key -> its lockout threshold); lock the keys that
        reach their threshold. Returns the delay to wait before answering."""
        now = time.monotonic()
        worst = 0
        for key, threshold in limits.items():
            record = self._current(key, now, cfg.lockout_duration) or _Failures(0, now, 0.0)
            record.count += 1
            record.last = now
            if record.count >= threshold:
                record.locked_until = now + cfg.lockout_duration
                record.count = 0  # the next round starts after the lockout
            self._records[key] = record
            self._records.move_to_end(key)
            worst = max(worst, record.count)
        while len(self._records) > self.max_records:
            self._records.popitem(last=False)
        if cfg.failed_login_delay <= 0:
            return 0.0
        return float(min(MAX_DELAY, cfg.failed_login_delay * 2 ** max(0, worst - 1)))

    def succeeded(self, key: str) -> None:
        """A correct password clears its user's failures (not its address's: one account an
        attacker owns must not reset the count of its guesses at others)."""
        self._records.pop(key, None)
