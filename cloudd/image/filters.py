"""The exact filters of an image list (Glance's GET /v2/images query): every row the SQL of
cloudd.image.listing found is checked here, tags and custom properties included."""

from __future__ import annotations

import operator

from multidict import MultiMapping

from cloudd.image.records import Image
from cloudd.image.rules import ImageRefused

FILTERS = ("name", "status", "owner", "visibility", "disk_format", "container_format", "id")
VISIBILITY_FILTERS = ("public", "private", "shared", "community", "all")
_NOT_PROPERTIES = frozenset({*FILTERS, "limit", "marker", "sort", "sort_key", "sort_dir", "tag",
                             "os_hidden", "member_status", "size_min", "size_max", "_project",
                             "created_at", "updated_at", "protected"})


def matches(image: Image, query: MultiMapping[str], visibility: str | None,
            project_id: str | None) -> bool:
    for key in ("name", "status", "owner", "disk_format", "container_format"):
        value: str | None = getattr(image, key)
        if key in query and not _op_match(value or "", query[key]):
            return False
    if "id" in query and not _op_match(image.id, query["id"]):
        return False
    if visibility not in (None, "all") and image.visibility != visibility:
        return False
    # Community images are listed only to their owner unless asked for.
    if visibility is None and image.visibility == "community" and \
            image.owner != (project_id or ""):
        return False
    for tag in query.getall("tag", []):
        if tag not in image.tags:
            return False
    hidden = query.get("os_hidden", "false").lower() == "true"
    if image.os_hidden != hidden:
        return False
    for key, value in query.items():  # anything else filters on a property (Glance does so)
        if key not in _NOT_PROPERTIES and image.properties.get(key) != value:
            return False
    return _size_ok(image, query)


def _op_match(value: str, wanted: str) -> bool:
    """Glance's `in:` operator (comma-separated, optionally quoted) and `eq:`."""
    if wanted.startswith("in:"):
        return value in {part.strip().strip('"') for part in wanted[3:].split(",")}
    if wanted.startswith("eq:"):
        wanted = wanted[3:]
    return value == wanted


def _size_ok(image: Image, query: MultiMapping[str]) -> bool:
    for key, check in (("size_min", operator.ge), ("size_max", operator.le)):
        if key in query:
            try:
                bound = int(query[key])
            except ValueError:
                raise ImageRefused(f"{key} must be an integer") from None
            if image.size is None or not check(image.size, bound):
                return False
    return True
