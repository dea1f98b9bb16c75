"""Elastic IPs = Nova's floating IPs, through the network front door (NetworkAPI's
allocate/associate/disassociate/release, which also re-plumb the hosts); here EC2's parameters
are read and its items and codes written."""

from __future__ import annotations

from typing import Any

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.instance_views import addresses_of
from cloudd.api.ec2.instances import load
from cloudd.api.ec2.xml import Ec2Error, missing
from cloudd.network import floating
from cloudd.network.api import NetworkAPI
from cloudd.network.floating import FloatingIp
from cloudd.network.service import NetworkService
from cloudd.vocab.network_errors import NetworkError


def _network(req: Ec2Request) -> NetworkAPI:
    """The front door, once the process is known to run the network service."""
    if req.host.find(NetworkService) is None:
        raise Ec2Error("UnsupportedOperation", "This cloud runs no network service")
    return NetworkAPI(req.host)


def _not_found(address: str) -> Ec2Error:
    return Ec2Error("InvalidAddress.NotFound", f"Address '{address}' not found.")


def _address(req: Ec2Request) -> str:
    address = req.params.get("PublicIp") or req.params.get("AllocationId")
    if not address:
        raise missing("PublicIp")
    return address


async def _item(req: Ec2Request, fip: FloatingIp) -> dict[str, Any]:
    instance = None
    if fip.instance_uuid:
        instance = await ids.ec2_id(req.db, ids.INSTANCE, fip.instance_uuid)
    return {"publicIp": fip.address, "allocationId": fip.uuid, "domain": "standard",
            "instanceId": instance, "privateIpAddress": fip.fixed_address}


async def allocate_address(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    try:
        fip = await _network(req).allocate_floating_ip(req.project_id)
    except floating.FloatingIpQuotaExceeded as exc:
        raise Ec2Error("AddressLimitExceeded", str(exc)) from None
    except floating.NoMoreFloatingIps as exc:
        raise Ec2Error("AddressLimitExceeded", str(exc)) from None
    return {"publicIp": fip.address, "allocationId": fip.uuid, "domain": "standard"}


async def associate_address(req: Ec2Request) -> dict[str, Any]:
    """Binds the address to the instance's first fixed IP (as Nova's EC2 API did)."""
    req.require_act()
    address = _address(req)
    instance = await load(req, req.params.required("InstanceId"))
    fixed, _ = (await addresses_of(req.db, [instance.uuid])).get(instance.uuid, (None, None))
    if fixed is None:
        raise Ec2Error("InvalidInstanceID",
                       "The instance has no fixed IP address to associate with (yet)")
    network = _network(req)
    try:
        fip = await network.associate_floating_ip(address, fixed, req.project_id)
    except floating.FloatingIpNotFound:
        raise _not_found(address) from None
    except NetworkError as exc:
        raise Ec2Error("InvalidParameterValue", str(exc)) from None
    return {"return": True, "associationId": f"eipassoc-{fip.id:08x}"}


async def disassociate_address(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    address = req.params.get("PublicIp") or req.params.get("AssociationId")
    if not address:
        raise missing("PublicIp")
    network = _network(req)
    if address.startswith("eipassoc-"):
        number = int(address.partition("-")[2] or "0", 16)
        address = await network.floating_address_of_association(number, req.project_id)
    try:
        await network.disassociate_floating_ip(address, req.project_id)
    except floating.FloatingIpNotFound:
        raise _not_found(address) from None
    return {"return": True}


async def release_address(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    address = _address(req)
    try:
        await _network(req).release_floating_ip(address, req.project_id)
    except floating.FloatingIpNotFound:
        raise _not_found(address) from None
    except floating.FloatingIpAssociated as exc:
        raise Ec2Error("InvalidIPAddress.InUse", str(exc)) from None
    return {"return": True}


async def describe_addresses(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    fips = await NetworkAPI(req.host).floating_ips(req.project_id)
    wanted = set(req.params.strings("PublicIp")) | set(req.params.strings("AllocationId"))
    known = {f.address for f in fips} | {f.uuid for f in fips}
    for address in wanted - known:
        raise _not_found(address)
    items = []
    for fip in fips:
        if wanted and fip.address not in wanted and fip.uuid not in wanted:
            continue
        item = await _item(req, fip)
        fields = {"public-ip": item["publicIp"], "instance-id": item["instanceId"],
                  "allocation-id": item["allocationId"], "domain": "standard",
                  "private-ip-address": item["privateIpAddress"]}
        if all(filter_matches(v, fields.get(k)) for k, v in req.params.filters().items()):
            items.append(item)
    return {"addressesSet": items}
