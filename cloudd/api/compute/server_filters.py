"""The server list's column filters beyond name/status/image/flavor (Nova's search options).

Who may use which, as Nova's `_get_server_search_options` and `remove_invalid_options`: every
user `reservation_id`; from 2.83 every user also the filters of `FILTERS_2_83`; admins all of
them, whatever the version. A filter the caller may not use is ignored, as Nova drops it.

How each matches, as Nova's database layer: `uuid`, `user_id`, `vm_state` and `task_state`
exactly (the last two repeatable: any of the values); the others as a regular expression
searched in the column's text (Nova's REGEXP filter), here on RE2. A NULL column matches none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cloudd.api.compute.errors import BadRequest
from cloudd.api.patterns import PatternError, name_filter
from cloudd.compute.instances import Instance

Check = Callable[[Instance], bool]

FILTERS_2_83 = frozenset({
    "availability_zone", "config_drive", "key_name", "created_at", "launched_at",
    "terminated_at", "power_state", "task_state", "vm_state", "progress", "user_id"})
EVERYONE = frozenset({"reservation_id"})
EXACT = frozenset({"uuid", "user_id"})
EXACT_ANY = frozenset({"vm_state", "task_state"})
# API filter name -> Instance field, searched as text.
REGEX: dict[str, str] = {
    "reservation_id": "reservation_id", "hostname": "hostname", "key_name": "key_name",
    "availability_zone": "availability_zone", "node": "node", "description": "description",
    "kernel_id": "kernel_id", "ramdisk_id": "ramdisk_id", "access_ip_v4": "access_ip_v4",
    "access_ip_v6": "access_ip_v6", "locked_by": "locked_by", "config_drive": "config_drive",
    "power_state": "power_state", "progress": "progress", "launch_index": "launch_index",
    "created_at": "created_at", "launched_at": "launched_at", "terminated_at": "terminated_at",
}
ALL = EXACT | EXACT_ANY | frozenset(REGEX)
TIMES = frozenset({"created_at", "launched_at", "terminated_at"})


def allowed(is_admin: bool, at_2_83: bool) -> frozenset[str]:
    if is_admin:
        return ALL
    return EVERYONE | FILTERS_2_83 if at_2_83 else EVERYONE


def column_checks(query: Any, is_admin: bool, at_2_83: bool) -> list[Check]:
    """One check per filter in `query` the caller may use (a bad pattern: 400)."""
    checks: list[Check] = []
    for key in sorted(allowed(is_admin, at_2_83) & set(query)):
        if key in EXACT_ANY:
            checks.append(_any_of(key, frozenset(query.getall(key))))
        elif key in EXACT:
            checks.append(_any_of(key, frozenset({query[key]})))
        else:
            checks.append(_searched(REGEX[key], key, query[key]))
    return checks


def _any_of(field: str, values: frozenset[str]) -> Check:
    return lambda row: getattr(row, field) in values


def _searched(field: str, key: str, pattern: str) -> Check:
    try:
        matches = name_filter(pattern)
    except PatternError as exc:
        raise BadRequest(f"Invalid {key} filter: {exc}") from None

    def check(row: Instance) -> bool:
        value = getattr(row, field)
        return value is not None and matches(_text(field, value))

    return check


def _text(field: str, value: object) -> str:
    """A column's text as Nova's database shows it (times as "YYYY-MM-DD HH:MM:SS")."""
    if field in TIMES and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
