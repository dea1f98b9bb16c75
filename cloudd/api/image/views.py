"""The Image v2 view of an image record: core fields plus its properties as top-level keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Keys a client can never set: they describe the data or the record itself.
READ_ONLY = frozenset({"id", "status", "size", "virtual_size", "checksum", "os_hash_algo",
                       "os_hash_value", "created_at", "updated_at", "self", "file", "schema",
                       "direct_url", "locations", "stores", "deleted", "deleted_at"})
# Core attributes clients may change (some only while queued, some only as admin).
MUTABLE_CORE = frozenset({"name", "visibility", "protected", "os_hidden", "min_ram", "min_disk",
                          "tags", "disk_format", "container_format", "owner"})
CORE = READ_ONLY | MUTABLE_CORE


def iso_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_view(image: dict[str, Any]) -> dict[str, Any]:
    image_id = image["id"]
    view: dict[str, Any] = dict(image["properties"])
    view.update({
        "id": image_id, "name": image["name"], "status": image["status"],
        "visibility": image["visibility"], "protected": image["protected"],
        "os_hidden": image["os_hidden"], "owner": image["owner"],
        "container_format": image["container_format"], "disk_format": image["disk_format"],
        "size": image["size"], "virtual_size": image["virtual_size"],
        "checksum": image["checksum"], "os_hash_algo": image["os_hash_algo"],
        "os_hash_value": image["os_hash_value"], "min_disk": image["min_disk"],
        "min_ram": image["min_ram"], "tags": list(image["tags"]),
        "created_at": iso_time(image["created_at"]), "updated_at": iso_time(image["updated_at"]),
        "self": f"/v2/images/{image_id}", "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
    })
    return view
