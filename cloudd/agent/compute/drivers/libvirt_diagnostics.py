"""A running domain's counters as Nova's libvirt driver reads them (its get_diagnostics).

Runs in a worker thread (blocking libvirt calls). The devices come from the live domain XML:
disk targets (vda) for virDomainBlockStats, interface targets (the tap, vnet0) for
virDomainInterfaceStats. A device whose counters libvirt cannot give (an empty CD-ROM) is
listed with no counters rather than failing the whole answer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from cloudd.rpc.contracts.compute import (
    CpuDiagnostics,
    Diagnostics,
    DiskDiagnostics,
    NicDiagnostics,
)

_KIB_PER_MIB = 1024


def read_diagnostics(domain: libvirt.virDomain) -> Diagnostics:
    """Raises libvirtError when the domain goes away while it is read."""
    root = ET.fromstring(domain.XMLDesc(0))
    _state, max_kib, used_kib, _vcpus, _cpu_ns = domain.info()
    cpus, _maps = domain.vcpus()
    return Diagnostics(
        state="running", driver="libvirt", hypervisor=root.get("type"), hypervisor_os="linux",
        memory_max_mb=max_kib // _KIB_PER_MIB, memory_used_mb=used_kib // _KIB_PER_MIB,
        memory_stats={str(k): int(v) for k, v in domain.memoryStats().items()},
        cpu_details=[CpuDiagnostics(id=number, time=cpu_time)
                     for number, _vstate, cpu_time, _pcpu in cpus],
        disk_details=[_disk(domain, dev) for dev in _targets(root, "disk")],
        nic_details=[_nic(domain, iface) for iface in root.iterfind("./devices/interface")],
    )


def _targets(root: ET.Element, kind: str) -> list[str]:
    return [target.get("dev", "") for target in root.iterfind(f"./devices/{kind}/target")
            if target.get("dev")]


def _disk(domain: libvirt.virDomain, dev: str) -> DiskDiagnostics:
    try:
        read_req, read_bytes, write_req, write_bytes, errors = domain.blockStats(dev)
    except libvirt.libvirtError:
        return DiskDiagnostics(device=dev)
    return DiskDiagnostics(device=dev, read_bytes=read_bytes, read_requests=read_req,
                           write_bytes=write_bytes, write_requests=write_req,
                           errors_count=errors)


def _nic(domain: libvirt.virDomain, iface: ET.Element) -> NicDiagnostics:
    mac = iface.find("mac")
    target = iface.find("target")
    dev = target.get("dev", "") if target is not None else ""
    nic = NicDiagnostics(device=dev, mac_address=mac.get("address") if mac is not None else None)
    if not dev:
        return nic
    try:
        stats = domain.interfaceStats(dev)
    except libvirt.libvirtError:
        return nic
    (nic.rx_octets, nic.rx_packets, nic.rx_errors, nic.rx_drop,
     nic.tx_octets, nic.tx_packets, nic.tx_errors, nic.tx_drop) = stats
    return nic
