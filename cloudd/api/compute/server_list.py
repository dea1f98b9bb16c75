"""GET /servers and /servers/detail: which servers, in which order, which page (Nova's rules).

- Filters: `name`, `ip`, `ip6` (regular expressions, on RE2: `ip` and `ip6` match from the
  start of an address, as Nova's re.match), `status` (repeatable; an unknown one is a 400 from
  2.38), `flavor`, `image`, `locked` (2.73), the tag filters (2.26), the column filters of
  server_filters (reservation_id, and from 2.83 the owner's others), and for admins `host`,
  `all_tenants`, `tenant_id`/`project_id` and `deleted` (deleted servers only; a non-admin's is
  ignored, as Nova drops it).
- `changes-since` and `changes-before` (2.66) list deleted servers too (status DELETED).
- `sort_key`/`sort_dir` (repeatable): Nova's valid keys; directions default to desc; created_at
  and id break ties. Sorting by host or node is for admins (403 otherwise).
- Paging by `limit` and `marker`; without a filter or sort read in Python, in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

from aiohttp import web

from cloudd.api.compute import server_filters, server_tags, views
from cloudd.api.compute.common import context, database, parse_limit, parse_time
from cloudd.api.compute.errors import BadRequest, Forbidden
from cloudd.api.compute.microversion import request_version
from cloudd.api.network import addresses as net_addresses
from cloudd.api.patterns import PatternError, name_filter
from cloudd.compute import instances
from cloudd.compute.instances import Instance
from cloudd.vocab import states

# Nova's sort keys (schemas/servers.py VALID_SORT_KEYS, by the API's names) -> Instance fields.
SORT_KEYS: dict[str, str] = {
    "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6",
    "availability_zone": "availability_zone", "config_drive": "config_drive",
    "created_at": "created_at", "display_description": "description",
    "display_name": "name", "host": "host", "hostname": "hostname", "image_ref": "image_ref",
    "instance_type_id": "instance_type_id", "kernel_id": "kernel_id", "key_name": "key_name",
    "launch_index": "launch_index", "launched_at": "launched_at", "locked": "locked",
    "locked_by": "locked_by", "node": "node", "power_state": "power_state",
    "progress": "progress", "project_id": "project_id", "ramdisk_id": "ramdisk_id",
    "task_state": "task_state", "terminated_at": "terminated_at", "updated_at": "updated_at",
    "user_id": "user_id", "uuid": "uuid", "vm_state": "vm_state",
}
# Keys Nova's schema takes and then ignores (SERVER_LIST_IGNORE_SORT_KEY, in part).
IGNORED_SORT_KEYS = frozenset({
    "architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device",
    "deleted", "deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id",
    "key_data", "launched_on", "memory_mb", "os_type", "reservation_id",
    "root_gb", "shutdown_terminate", "user_data", "vcpus", "vm_mode"})
ADMIN_SORT_KEYS = frozenset({"host", "node"})
SortOrder = list[tuple[str, bool]]  # (Instance field, descending)


def _pattern(query: Any, key: str, anchored: bool = False) -> Callable[[str], bool] | None:
    """A regular-expression filter on RE2, in time linear in the text (`anchored`: re.match)."""
    if key not in query:
        return None
    pattern = query[key]
    try:
        return name_filter(f"^(?:{pattern})" if anchored else pattern)
    except PatternError as exc:
        raise BadRequest(f"Invalid {key} filter: {exc}") from None


def bool_filter(text: str, name: str) -> bool:
    """Nova's strict boolean query value (oslo bool_from_string strict)."""
    value = text.strip().lower()
    if value in ("1", "t", "true", "on", "y", "yes"):
        return True
    if value in ("0", "f", "false", "off", "n", "no"):
        return False
    raise BadRequest(f"Unrecognized value '{text}' for {name}, acceptable values are: "
                     "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


def sort_order(query: Any, is_admin: bool) -> SortOrder | None:
    """The requested order (None: none requested), Nova's tie breakers appended."""
    keys, dirs = query.getall("sort_key", []), query.getall("sort_dir", [])
    if not keys and not dirs:
        return None
    if len(dirs) > len(keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same")
    order: SortOrder = []
    for index, key in enumerate(keys):
        direction = dirs[index] if index < len(dirs) else "desc"
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort_dir {direction!r}: asc or desc")
        if key in ADMIN_SORT_KEYS and not is_admin:
            raise Forbidden(f"Only administrators can sort servers by {key}")
        if key in SORT_KEYS:
            order.append((SORT_KEYS[key], direction == "desc"))
        elif key not in IGNORED_SORT_KEYS:
            raise BadRequest(f"Invalid sort_key {key!r}")
    return [*order, ("created_at", True), ("id", True)]


def sorted_rows(rows: Sequence[Instance], order: SortOrder) -> list[Instance]:
    """Stable sorts from the last key to the first; None sorts before any value (ascending)."""
    result = list(rows)
    for field, descending in reversed(order):
        result.sort(key=partial(_sort_value, field), reverse=descending)
    return result


def _sort_value(field: str, row: Instance) -> tuple[bool, Any]:
    """A field's values are all of one type or None: None first, then the values."""
    value = getattr(row, field)
    return (value is not None, value if value is not None else 0)


def _statuses(request: web.Request) -> frozenset[str] | None:
    """The `status` values asked for (None: no filter); from 2.38 an unknown one is a 400,
    below it matches nothing (Nova answers an empty list)."""
    asked = frozenset(value.upper() for value in request.query.getall("status", []))
    if not asked:
        return None
    if request_version(request).at_least("2.38") and not asked <= states.KNOWN_STATUSES:
        raise BadRequest("Invalid status value")
    return asked


def _matches(row: Instance, query: Any, is_admin: bool,
             name_matches: Callable[[str], bool] | None, statuses: frozenset[str] | None,
             checks: list[server_filters.Check]) -> bool:
    if name_matches is not None and not name_matches(row.name or ""):
        return False
    if statuses is not None and states.api_status(row.vm_state, row.task_state) not in statuses:
        return False
    if not all(check(row) for check in checks):
        return False
    if "flavor" in query and row.flavor.flavorid != query["flavor"]:
        return False
    if "image" in query and row.image_ref != query["image"].rsplit("/", 1)[-1]:
        return False
    if is_admin and "host" in query and row.host != query["host"]:
        return False
    return True


async def _by_address(request: web.Request, rows: list[Instance]) -> list[Instance]:
    """The rows with an address `ip` (IPv4) or `ip6` (IPv6) matches, fixed or floating."""
    ip, ip6 = _pattern(request.query, "ip", True), _pattern(request.query, "ip6", True)
    if ip is None and ip6 is None:
        return rows
    found = await net_addresses.server_addresses(database(request), [r.uuid for r in rows],
                                                 detailed=False)

    def wanted(uuid: str) -> bool:
        for entries in found.get(uuid, {}).values():
            for entry in entries:
                check = ip if entry["version"] == 4 else ip6
                if check is not None and check(entry["addr"]):
                    return True
        return False

    return [row for row in rows if wanted(row.uuid)]


def _deleted_scope(request: web.Request, changes: tuple[float | None, float | None]) \
        -> Literal["live", "any", "only"]:
    query = request.query
    if context(request).is_admin and "deleted" in query and bool_filter(query["deleted"],
                                                                        "deleted"):
        return "only"
    return "live" if changes == (None, None) else "any"


def _changes(request: web.Request) -> tuple[float | None, float | None]:
    """(changes-since, changes-before): the window of updated_at asked for (2.66: before)."""
    query = request.query
    since = parse_time(query["changes-since"], "changes-since") if "changes-since" in query else None
    before = None
    if "changes-before" in query and request_version(request).at_least("2.66"):
        before = parse_time(query["changes-before"], "changes-before")
        if since is not None and since > before:
            raise BadRequest("The value of changes-since must be less than or equal to "
                             "changes-before.")
    return since, before


async def visible_servers(request: web.Request) -> list[Instance]:
    ctx = context(request)
    query = request.query
    if not ctx.is_admin:
        ctx.require_read(ctx.project_id)
    limit = parse_limit(query)
    since, before = changes = _changes(request)
    project_id, all_projects = ctx.project_id, False
    all_tenants = ctx.is_admin and "all_tenants" in query and query["all_tenants"].lower() not in (
        "0", "false", "off", "no")
    if all_tenants and ("tenant_id" in query or "project_id" in query):
        project_id = query.get("tenant_id") or query["project_id"]
    elif all_tenants:
        all_projects = True
    deleted = _deleted_scope(request, changes)  # a bad value is a 400 before any row is read
    db = database(request)
    tag_filters = server_tags.tag_filters(request)
    order = sort_order(query, ctx.is_admin)
    statuses = _statuses(request)
    checks = server_filters.column_checks(query, ctx.is_admin,
                                          request_version(request).at_least("2.83"))
    python_filters = {"name", "status", "flavor", "image", "host", "ip", "ip6"} & set(query)
    if checks:
        python_filters.add("columns")
    locked: bool | None = None
    if "locked" in query and request_version(request).at_least("2.73"):  # Nova: from 2.73
        locked = bool_filter(query["locked"], "locked")
        python_filters.add("locked")
    if tag_filters:
        python_filters.add("tags")
    if not python_filters and order is None:
        # Paging in SQL: a page of a large list must not read the whole table.
        after = None
        if "marker" in query:
            after = await instances.paging_mark(db, query["marker"])
            if after is None:
                raise BadRequest(f"marker [{query['marker']}] not found")
        return await instances.live_rows(db, project_id=project_id, all_projects=all_projects,
                                         changed_since=since, changed_before=before,
                                         after=after, deleted=deleted,
                                         limit=int(limit) if "limit" in query else None)
    name_matches = _pattern(query, "name")  # a bad pattern is a 400 before any row is read
    rows = await instances.live_rows(db, project_id=project_id, all_projects=all_projects,
                                     changed_since=since, changed_before=before,
                                     deleted=deleted)
    servers = [s for s in rows if _matches(s, query, ctx.is_admin, name_matches, statuses,
                                           checks) and locked in (None, s.locked)]
    servers = await _by_address(request, servers)
    if tag_filters:
        servers = await server_tags.filter_by_tags(request, servers, tag_filters)
    if order is not None:
        servers = sorted_rows(servers, order)
    if "marker" in query:
        ids = [s.uuid for s in servers]
        if query["marker"] not in ids:
            raise BadRequest(f"marker [{query['marker']}] not found")
        servers = servers[ids.index(query["marker"]) + 1:]
    return servers[:limit] if "limit" in query else servers


def collection_links(request: web.Request, servers: list[Instance], path: str) \
        -> list[dict[str, str]]:
    """Nova's next link: when the page is exactly `limit` long."""
    if "limit" not in request.query or not servers or len(servers) != parse_limit(request.query):
        return []
    params = [(k, v) for k, v in request.query.items() if k != "marker"]
    params.append(("marker", servers[-1].uuid))
    query = "&".join(f"{k}={v}" for k, v in params)
    return [{"rel": "next", "href": f"{views.base_url(request)}/v2.1/{path}?{query}"}]
