"""The Image v2 view of an image record: core fields plus its properties as top-level keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloudd.image.records import Image


def iso_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_view(image: Image) -> dict[str, Any]:
    """Glance's JSON of the image: its properties first, then the core fields over them."""
    image_id = image.id
    view: dict[str, Any] = dict(image.properties)
    view.update({
        "id": image_id, "name": image.name, "status": image.status,
        "visibility": image.visibility, "protected": image.protected,
        "os_hidden": image.os_hidden, "owner": image.owner,
        "container_format": image.container_format, "disk_format": image.disk_format,
        "size": image.size, "virtual_size": image.virtual_size,
        "checksum": image.checksum, "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value, "min_disk": image.min_disk,
        "min_ram": image.min_ram, "tags": list(image.tags),
        "created_at": iso_time(image.created_at), "updated_at": iso_time(image.updated_at),
        "self": f"/v2/images/{image_id}", "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
    })
    return view
