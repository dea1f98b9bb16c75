"""Which of the host's libvirt domains are this driver's guests, and which are someone else's.

Runs in a worker thread (blocking libvirt calls). A domain is this driver's guest when its
cloudd metadata names this cloud and this driver's instances_path (``DomainOwner.is_ours``);
a domain of this cloud under another instances_path belongs to another agent of the same cloud
on the same libvirtd and is neither listed nor reported. Everything else, another cloud's
domains and domains without cloudd metadata, is reported and never touched.
"""

from __future__ import annotations

import libvirt

from cloudd.agent.compute.drivers.libvirt_xml import domain_owner
from cloudd.rpc.contracts.compute import HostDomain


def host_domains(conn: libvirt.virConnect, cloud_id: str,
                 instances_path: str) -> tuple[list[str], list[HostDomain]]:
    """(uuids of this driver's guests, the domains of other clouds and programs)."""
    ours: list[str] = []
    others: list[HostDomain] = []
    for domain in conn.listAllDomains(0):
        try:
            owner = domain_owner(domain.XMLDesc(0))
            active = bool(domain.isActive())
        except libvirt.libvirtError:
            continue  # undefined while we looked
        if owner is not None and owner.is_ours(cloud_id, instances_path):
            ours.append(domain.UUIDString())
        elif owner is None or owner.cloud_id != cloud_id:
            others.append(HostDomain(
                name=domain.name(), uuid=domain.UUIDString(), active=active,
                cloud_id=owner.cloud_id if owner else None,
                instances_path=owner.instances_path if owner else None))
    return ours, others
