"""The hypervisor's name of an instance (Nova's ``instance_name_template``, ``Instance.name``).

The controller renders the template once, when it creates the instance, and keeps the result in
``system_metadata["instance_name"]``: the agent names the libvirt domain with it and the API
shows it (``OS-EXT-SRV-ATTR:instance_name``), so both always agree, whatever the configuration
says later. Rows made before the name was kept had ``instance-%08x`` of their id, and keep it.

The default, ``instance-%(uuid)s``, cannot collide between clouds sharing one libvirtd (or a cloud
started again on a fresh state directory), as Nova's ``instance-%08x`` of a per-database number
does.
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_TEMPLATE = "instance-%(uuid)s"
LEGACY_TEMPLATE = "instance-%08x"
# What libvirt (and a shell, a log line) takes as a domain name without quoting.
VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SYSTEM_METADATA_KEY = "instance_name"


class InstanceNameError(ValueError):
    """The template does not render, or renders a name libvirt should not get."""


def render_instance_name(template: str, instance_id: int, uuid: str, cloud_id: str) -> str:
    """``template`` with ``%(id)s``/``%(uuid)s``/``%(cloud_id)s`` keys, or Nova's positional form
    (``instance-%08x``: the id)."""
    try:
        if "%(" in template:
            name = template % {"id": instance_id, "uuid": uuid, "cloud_id": cloud_id}
        else:
            name = template % instance_id
    except (KeyError, TypeError, ValueError) as exc:
        raise InstanceNameError(
            f"instance_name_template {template!r} does not render ({exc}); use the keys"
            " %(id)s, %(uuid)s, %(cloud_id)s or one %08x of the id") from exc
    if not VALID_NAME.match(name):
        raise InstanceNameError(
            f"instance_name_template {template!r} renders {name!r}: letters, digits, '.', '_'"
            " and '-' only (at most 200)")
    return name


def check_template(template: str) -> str:
    """The template if it renders a valid name for any instance (config validation)."""
    render_instance_name(template, 4294967295, "0" * 8 + "-0000-4000-8000-" + "0" * 12,
                         "0" * 8 + "-0000-4000-8000-" + "0" * 12)
    return template


def instance_name(instance: dict[str, Any], system_metadata: dict[str, Any]) -> str:
    """The name the instance's domain has: the kept one, or the old rule for older rows."""
    kept = system_metadata.get(SYSTEM_METADATA_KEY)
    if isinstance(kept, str) and VALID_NAME.match(kept):
        return kept
    return LEGACY_TEMPLATE % int(instance["id"])
