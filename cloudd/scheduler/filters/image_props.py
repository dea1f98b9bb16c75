"""ImagePropertiesFilter: the image's architecture / hypervisor_type / vm_mode must be supported."""

from __future__ import annotations

import functools
from typing import Any

from cloudd.scheduler.filters.base import BaseHostFilter, HostPredicate
from cloudd.scheduler.filters.extra_specs_ops import compile_requirement
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec

# Aliases Nova canonicalises (nova.compute.arch / hv_type / vm_mode), so an image tagged
# "amd64" runs on an "x86_64" host.
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i386": "i686", "i486": "i686",
                 "i586": "i686", "x86_32": "i686", "arm64": "aarch64"}
_HV_TYPE_ALIASES = {"xapi": "xen"}
_VM_MODE_ALIASES = {"pv": "xen", "hv": "hvm", "baremetal": "hvm"}


def _canonical(value: Any, aliases: dict[str, str]) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).lower()
    return aliases.get(text, text)


@functools.lru_cache(maxsize=1024)
def canonical_entry(
    entry: tuple[str, str, str],
) -> tuple[str | None, str | None, str | None]:
    """One supported_instances entry canonicalised; cached, as hosts share a handful of entries."""
    arch, hv_type, vm_mode = entry
    return (
        _canonical(arch, _ARCH_ALIASES),
        _canonical(hv_type, _HV_TYPE_ALIASES),
        _canonical(vm_mode, _VM_MODE_ALIASES),
    )


class ImagePropertiesFilter(BaseHostFilter):
    """Pass hosts with a supported_instances entry matching every image property that is set.

    An image with none of the properties set runs anywhere; a host that lists no supported
    instances cannot run an image that asks for any. `hypervisor_version_requires` (e.g.
    ">= 6000") is checked against the host's hypervisor_version with the extra spec operators.
    """

    name = "ImagePropertiesFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        properties = spec.image.properties
        wanted_arch = _canonical(properties.get("architecture"), _ARCH_ALIASES)
        wanted_hv_type = _canonical(properties.get("hypervisor_type"), _HV_TYPE_ALIASES)
        wanted_vm_mode = _canonical(properties.get("vm_mode"), _VM_MODE_ALIASES)
        version_requirement = properties.get("hypervisor_version_requires")
        version_ok = compile_requirement(str(version_requirement)) if version_requirement else None
        if not (wanted_arch or wanted_hv_type or wanted_vm_mode or version_ok):
            return None

        def supports_image(host: HostState) -> bool:
            if version_ok is not None and not version_ok(host.hypervisor_version):
                return False
            if not (wanted_arch or wanted_hv_type or wanted_vm_mode):
                return True
            for entry in host.supported_instances:
                arch, hv_type, vm_mode = canonical_entry(entry)
                if wanted_arch and arch != wanted_arch:
                    continue
                if wanted_hv_type and hv_type != wanted_hv_type:
                    continue
                if wanted_vm_mode and vm_mode != wanted_vm_mode:
                    continue
                return True
            return False

        return supports_image
