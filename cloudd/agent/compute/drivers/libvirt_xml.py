"""Domain XML for the libvirt driver (Nova's ``nova/virt/libvirt/config.py``, much reduced).

``DomainLayout`` says what a guest is made of on this host (files already in its instance
directory); ``domain_xml`` turns it into the XML given to ``defineXML``. The cloudd metadata
element (the cloud id and the driver's instances_path) marks domains as ours, so a host's other
domains, another cloud's included, are never listed as guests or destroyed (``DomainOwner``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from cloudd.rpc.contracts.network import Vif

METADATA_NS = "https://cloudd.example/xmlns/libvirt/instance/1"
# Kernel command line for direct kernel boot: both consoles; the last one gets /dev/console.
DEFAULT_CMDLINE = "console=tty1 console=ttyS0"


@dataclass(slots=True)
class DiskSpec:
    path: str
    target: str  # "vda", "vdb", ...
    format: str = "qcow2"


@dataclass(slots=True)
class DomainLayout:
    uuid: str
    name: str
    virt_type: str
    vcpus: int
    memory_mb: int
    console_log: str
    instances_path: str
    cloud_id: str = ""
    disks: list[DiskSpec] = field(default_factory=list)
    kernel: str | None = None
    ramdisk: str | None = None
    cmdline: str = DEFAULT_CMDLINE
    vnc_listen: str | None = "127.0.0.1"
    network_info: list[Vif] = field(default_factory=list)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def domain_xml(layout: DomainLayout) -> str:
    domain = ET.Element("domain", type=layout.virt_type)
    _sub(domain, "name", layout.name)
    _sub(domain, "uuid", layout.uuid)
    metadata = _sub(domain, "metadata")
    owner = ET.SubElement(metadata, f"{{{METADATA_NS}}}instance")
    _sub(owner, f"{{{METADATA_NS}}}instances_path", layout.instances_path)
    if layout.cloud_id:
        _sub(owner, f"{{{METADATA_NS}}}cloud_id", layout.cloud_id)
    _sub(domain, "memory", str(layout.memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(layout.vcpus))
    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch="x86_64", machine="pc")
    if layout.kernel:
        _sub(os_element, "kernel", layout.kernel)
        if layout.ramdisk:
            _sub(os_element, "initrd", layout.ramdisk)
        _sub(os_element, "cmdline", layout.cmdline)
    else:
        _sub(os_element, "boot", dev="hd")
    features = _sub(domain, "features")
    _sub(features, "acpi")  # the power button: soft reboot and clean stop
    _sub(features, "apic")
    if layout.virt_type == "kvm":
        _sub(domain, "cpu", mode="host-passthrough")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")  # a reboot inside the guest keeps it running
    _sub(domain, "on_crash", "destroy")
    devices = _sub(domain, "devices")
    # No USB controller (nothing here uses USB): probing the one libvirt would add costs a
    # booting Linux guest 0.3 s under software emulation.
    _sub(devices, "controller", type="usb", model="none")
    for disk in layout.disks:
        _add_disk(devices, disk)
    for vif in layout.network_info:
        _add_interface(devices, vif)
    _add_console(devices, layout.console_log)
    if layout.vnc_listen:
        _sub(devices, "graphics", type="vnc", autoport="yes", listen=layout.vnc_listen)
        video = _sub(devices, "video")
        _sub(video, "model", type="vga")
    _sub(devices, "memballoon", model="none")
    ET.register_namespace("cloudd", METADATA_NS)
    return ET.tostring(domain, encoding="unicode")


def _add_disk(devices: ET.Element, disk: DiskSpec) -> None:
    element = _sub(devices, "disk", type="file", device="disk")
    _sub(element, "driver", name="qemu", type=disk.format, cache="none")
    _sub(element, "source", file=disk.path)
    _sub(element, "target", dev=disk.target, bus="virtio")


def _add_interface(devices: ET.Element, vif: Vif) -> None:
    """A virtio NIC on the network's bridge, with the VIF's MAC and tap name."""
    if not vif.bridge:
        raise ValueError(f"network_info entry without a bridge: {vif!r}")
    element = _sub(devices, "interface", type="bridge")
    _sub(element, "source", bridge=vif.bridge)
    _sub(element, "mac", address=vif.mac)
    _sub(element, "model", type="virtio")
    _sub(element, "target", dev=vif.devname)


def _add_console(devices: ET.Element, log_path: str) -> None:
    """A pty serial port whose output virtlogd also appends to ``log_path``: the log file for
    the console-output API, the pty for an interactive console."""
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=log_path, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")


@dataclass(frozen=True, slots=True)
class DomainOwner:
    """Who defined a domain, from its cloudd metadata (``None`` from ``domain_owner``: no
    cloudd metadata at all, another program's domain)."""

    instances_path: str | None
    cloud_id: str | None  # None: defined before clouds had ids

    def is_ours(self, cloud_id: str, instances_path: str) -> bool:
        """This driver's guest: this cloud's id (or, from before cloud ids, no id) and this
        driver's instances_path. Another agent of the same cloud on the same libvirtd has
        another instances_path; a fresh cloud on an old state directory has another id."""
        return self.instances_path == instances_path and self.cloud_id in (None, cloud_id)


def domain_owner(xml_text: str) -> DomainOwner | None:
    """The owner recorded in a domain's cloudd metadata; None if it has none."""
    root = ET.fromstring(xml_text)
    owner = root.find(f"metadata/{{{METADATA_NS}}}instance")
    if owner is None:
        return None
    path = owner.find(f"{{{METADATA_NS}}}instances_path")
    cloud = owner.find(f"{{{METADATA_NS}}}cloud_id")
    return DomainOwner(path.text if path is not None else None,
                       cloud.text if cloud is not None and cloud.text else None)


def vnc_port(xml_text: str) -> int | None:
    """The port QEMU's VNC server got (only in a running domain's XML; -1 before autoport)."""
    graphics = ET.fromstring(xml_text).find("devices/graphics[@type='vnc']")
    if graphics is None:
        return None
    port = int(graphics.get("port", "-1"))
    return port if port > 0 else None
