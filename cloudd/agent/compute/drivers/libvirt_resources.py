"""What a libvirt host offers (Nova's ``get_available_resource`` for libvirt). Blocking: run it
in a worker thread."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt

from cloudd.rpc.contracts.compute import HostResources

GiB = 1 << 30


def cpu_info(capabilities_xml: str) -> dict[str, Any]:
    """The host CPU from the capabilities XML, in Nova's ``cpu_info`` shape."""
    cpu = ET.fromstring(capabilities_xml).find("host/cpu")
    if cpu is None:
        return {}
    topology = cpu.find("topology")
    return {
        "arch": cpu.findtext("arch", ""),
        "model": cpu.findtext("model", ""),
        "vendor": cpu.findtext("vendor", ""),
        "topology": {key: int(topology.get(key, "1")) for key in ("sockets", "cores", "threads")}
        if topology is not None else {},
        "features": sorted(feature.get("name", "") for feature in cpu.findall("feature")),
    }


def host_resources(conn: libvirt.virConnect, nodename: str, instances_path: Path,
                   host_ip: str | None) -> HostResources:
    # getInfo: [model, memory MiB, cpus, MHz, NUMA nodes, sockets, cores, threads]
    info = conn.getInfo()
    info_cpu = cpu_info(conn.getCapabilities())
    return HostResources(
        hypervisor_hostname=nodename,
        hypervisor_type="qemu",  # Nova reports QEMU for both kvm and qemu domains
        hypervisor_version=conn.getVersion(),  # QEMU's version, 7.2.0 -> 7002000
        vcpus=int(info[2]),
        memory_mb=int(info[1]),
        local_gb=shutil.disk_usage(instances_path).total // GiB,
        cpu_info=info_cpu,
        supported_instances=[(info_cpu.get("arch") or "x86_64", "qemu", "hvm")],
        host_ip=host_ip,
    )
