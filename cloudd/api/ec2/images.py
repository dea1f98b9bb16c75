"""DescribeImages, RegisterImage (bundles), DeregisterImage, CreateImage, Describe/Modify
ImageAttribute: the image domain's front door (cloudd.image.api.ImageAPI) under ami-/aki-/ari-
ids; the handlers translate EC2's parameters to its calls and its refusals to EC2's codes."""

from __future__ import annotations

from typing import Any

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.instance_views import ROOT_DEVICE, image_ec2_ids
from cloudd.api.ec2.instances import _not_locked, compute, load, refusals_mapped
from cloudd.api.ec2.tags import tag_filter_ok, tag_set, tags_of
from cloudd.api.ec2.xml import Ec2Error, invalid, missing, timestamp
from cloudd.ec2 import tags as tag_store
from cloudd.image.api import ImageAPI
from cloudd.image.bundles import BundleError
from cloudd.image.records import Image
from cloudd.image.rules import ImageForbidden, ImageNotVisible, ImagePatch, ImageProtected

_TYPES = {"ami": "machine", "aki": "kernel", "ari": "ramdisk"}


def images(req: Ec2Request) -> ImageAPI:
    return ImageAPI(req.host)


def image_state(image: Image) -> tuple[str, dict[str, str] | None]:
    """(imageState, stateReason): `available` once active; a bundle's `image_state` steps
    (downloading, decrypting, ...) are `pending`, and its `failed_*` states `failed`."""
    step = str(image.properties.get("image_state", ""))
    if image.status == "active":
        return "available", None
    if image.status == "killed" or step.startswith("failed"):
        return "failed", {"code": step or "failed", "message": f"Image registration {step}"}
    if image.status == "deactivated":
        return "disabled", None
    return "pending", None


async def _items(req: Ec2Request, images: list[Image]) -> list[dict[str, Any]]:
    ec2_ids = await image_ec2_ids(req.db, [v for i in images for v in (
        i.id, i.properties.get("kernel_id", ""), i.properties.get("ramdisk_id", ""))])
    tags = await tags_of(req.db, req.project_id, [i.id for i in images])
    items = []
    for image in images:
        props = image.properties
        state, reason = image_state(image)
        prefix = ids.image_prefix(image)
        items.append({
            "imageId": ec2_ids[image.id],
            "imageLocation": props.get("image_location") or f"None ({image.name})",
            "imageState": state, "stateReason": reason,
            "imageOwnerId": image.owner,
            "creationDate": timestamp(image.created_at),
            "isPublic": image.visibility == "public",
            "architecture": props.get("architecture") or "x86_64",
            "imageType": _TYPES.get(prefix, "machine"),
            "name": image.name, "description": props.get("description"),
            "kernelId": ec2_ids.get(props.get("kernel_id", "")),
            "ramdiskId": ec2_ids.get(props.get("ramdisk_id", "")),
            "rootDeviceType": "instance-store", "rootDeviceName": ROOT_DEVICE,
            "blockDeviceMapping": [], "virtualizationType": "hvm",
            "tagSet": tag_set(tags.get(image.id, {})),
        })
    return items


_FILTERS = {"image-id": "imageId", "name": "name", "state": "imageState",
            "image-type": "imageType", "is-public": "isPublic", "owner-id": "imageOwnerId",
            "architecture": "architecture", "kernel-id": "kernelId", "ramdisk-id": "ramdiskId",
            "description": "description", "manifest-location": "imageLocation",
            "root-device-type": "rootDeviceType"}


def _matches(filters: dict[str, list[str]], item: dict[str, Any]) -> bool:
    if not tag_filter_ok(filters, {t["key"]: t["value"] for t in item["tagSet"] or []}):
        return False
    for name, wanted in filters.items():
        if name in _FILTERS:
            value = item[_FILTERS[name]]
            value = str(value).lower() if isinstance(value, bool) else value
            if not filter_matches(wanted, value):
                return False
        elif not name.startswith("tag"):
            raise invalid(f"The filter '{name}' is invalid")
    return True


async def describe_images(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    found = await images(req).visible_to(req.project_id)
    if wanted := req.params.strings("ImageId"):
        uuids = [await ids.uuid_for(req.db, ids.IMAGE, ec2) for ec2 in wanted]
        by_id = {i.id: i for i in found}
        for ec2, uuid in zip(wanted, uuids, strict=True):
            if uuid not in by_id:
                raise ids.not_found(ids.IMAGE, ec2)
        found = [by_id[u] for u in uuids]
    owners = req.params.strings("Owner")
    if owners:
        allowed = {req.project_id if o == "self" else o for o in owners}
        found = [i for i in found if i.owner in allowed]
    filters = req.params.filters()
    return {"imagesSet": [i for i in await _items(req, found) if _matches(filters, i)]}


async def _own_image(req: Ec2Request, ec2: str) -> Image:
    """An image the project may change (owner's members, or admins)."""
    uuid = await ids.uuid_for(req.db, ids.IMAGE, ec2)
    try:
        return await images(req).get_owned(req.context, req.project_id, uuid)
    except ImageNotVisible:
        raise ids.not_found(ids.IMAGE, ec2) from None
    except ImageForbidden:
        raise Ec2Error("AuthFailure", f"Not authorized for image:{ec2}") from None


async def register_image(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    location = req.params.get("ImageLocation")
    if not location:
        raise missing("ImageLocation")  # EBS snapshots (BlockDeviceMapping) do not exist here
    try:
        image = await images(req).register_bundle(
            req.project_id, location, name=req.params.get("Name"),
            description=req.params.get("Description"),
            uuid_of=lambda ec2: ids.uuid_for(req.db, ids.IMAGE, ec2))
    except ImageNotVisible as exc:  # the manifest's kernel or ramdisk
        raise ids.not_found(ids.IMAGE, exc.image_id) from None
    except BundleError as exc:
        raise Ec2Error(exc.code, exc.message) from None
    return {"imageId": await ids.ec2_id(req.db, ids.IMAGE, image.id, ids.image_prefix(image))}


async def deregister_image(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    image = await _own_image(req, req.params.required("ImageId"))
    try:
        await images(req).deregister(image)
    except ImageProtected:
        raise Ec2Error("OperationNotPermitted", "The image is protected") from None
    await tag_store.remove_all(req.db, image.id)
    return {"return": True}


async def create_image(req: Ec2Request) -> dict[str, Any]:
    """A snapshot of the instance, as the Compute API's createImage."""
    req.require_act()
    row = await load(req, req.params.required("InstanceId"))
    name = req.params.required("Name")
    _not_locked(req, row)
    metadata = {"description": d} if (d := req.params.get("Description")) else {}
    image = await refusals_mapped(compute(req).snapshot(row, name, metadata, req.request_id,
                                                        req.context))
    return {"imageId": await ids.ec2_id(req.db, ids.IMAGE, image.id, ids.image_prefix(image))}


async def describe_image_attribute(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    ec2 = req.params.required("ImageId")
    attribute = req.params.required("Attribute")
    uuid = await ids.uuid_for(req.db, ids.IMAGE, ec2)
    image = await images(req).find_visible(req.project_id, uuid)
    if image is None:
        raise ids.not_found(ids.IMAGE, ec2)
    item = (await _items(req, [image]))[0]
    body: dict[str, Any] = {"imageId": ec2}
    if attribute == "launchPermission":
        body["launchPermission"] = [{"group": "all"}] if item["isPublic"] else []
    elif attribute in ("kernel", "ramdisk", "description"):
        value = item[{"kernel": "kernelId", "ramdisk": "ramdiskId"}.get(attribute, attribute)]
        body[attribute] = {"value": value} if value is not None else {}
    elif attribute == "blockDeviceMapping":
        body["blockDeviceMapping"] = []
    elif attribute == "productCodes":
        body["productCodes"] = []
    else:
        raise invalid(f"Value ({attribute}) for parameter attribute is invalid.")
    return body


def _launch_permission_change(req: Ec2Request) -> tuple[list[str], list[str]]:
    """(groups added, groups removed), from LaunchPermission.Add/Remove.N.Group (boto3) or
    Attribute=launchPermission&OperationType=add|remove&UserGroup.N (euca2ools)."""
    params = req.params
    added = [m.get("Group") or "" for m in params.members("LaunchPermission.Add")]
    removed = [m.get("Group") or "" for m in params.members("LaunchPermission.Remove")]
    if params.get("Attribute") == "launchPermission":
        groups = params.strings("UserGroup")
        if params.get("OperationType") == "add":
            added += groups
        elif params.get("OperationType") == "remove":
            removed += groups
        else:
            raise invalid("OperationType must be add or remove")
    for group in added + removed:
        if group != "all":
            raise invalid(f"Only the group 'all' is supported, not {group!r}")
    return added, removed


async def modify_image_attribute(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    image = await _own_image(req, req.params.required("ImageId"))
    added, removed = _launch_permission_change(req)
    patch = ImagePatch(req.context, image)
    if added or removed:
        try:  # the Image API's policy (Glance's publicize_image): only admins publish to all
            patch.set("visibility", "public" if added else "private")
        except ImageForbidden as exc:
            raise Ec2Error("UnauthorizedOperation", exc.message) from None
    description = req.params.get("Description.Value")
    if description is not None:
        patch.set_description(description)
    if not patch.changes:
        raise missing("LaunchPermission")
    await images(req).update(image, patch.changes)
    return {"return": True}
