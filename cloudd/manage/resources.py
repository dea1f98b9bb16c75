"""`cloudd manage flavor|quota|network|floating|image ...`: what servers are made of."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cloudd import quota_limits, storage_quota
from cloudd.compute import flavors
from cloudd.compute import quota as compute_quota
from cloudd.compute.quota import DEFAULT_QUOTAS
from cloudd.config import CloudConfig
from cloudd.identity import projects as identity_projects
from cloudd.image import records as image_records
from cloudd.manage.common import ManageError, print_table, with_db
from cloudd.objectstore import meta as object_meta


# ----- flavors --------------------------------------------------------------------------------
async def flavor_create(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    from cloudd.db import DuplicateError

    flavorid = args.id or str(uuid.uuid4())
    try:
        await flavors.create(db, flavorid=flavorid, name=args.name, memory_mb=args.ram,
                             vcpus=args.vcpus, root_gb=args.disk, ephemeral_gb=args.ephemeral,
                             swap=args.swap, rxtx_factor=1.0, is_public=not args.private,
                             description=args.description, now=time.time())
    except DuplicateError:
        raise ManageError(f"a flavor named {args.name!r} or with id {flavorid!r} exists") from None
    print(f"flavor {args.name} created (id {flavorid})")
    return 0


async def flavor_list(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    rows = await flavors.list_all(db, by_size=True)
    print_table(("ID", "Name", "RAM", "VCPUs", "Disk", "Ephemeral", "Public"), [
        (r.flavorid, r.name, r.memory_mb, r.vcpus, r.root_gb, r.ephemeral_gb,
         "yes" if r.is_public else "no") for r in rows])
    return 0


async def flavor_delete(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    row = await flavors.get_by_id_or_name(db, args.flavor)
    if row is None:
        raise ManageError(f"no flavor with name or id {args.flavor!r}")
    # As the API does: free the unique name and id; servers keep their flavor snapshot.
    await flavors.mark_deleted(db, row.id, f"deleted-{row.id}-{uuid.uuid4().hex[:8]}")
    print(f"flavor {row.name} deleted")
    return 0


# ----- quotas ---------------------------------------------------------------------------------
async def _project_id(db: Any, name_or_id: str) -> str:
    project = await identity_projects.find_by_id_or_name(db, name_or_id)
    if project is None:
        raise ManageError(f"no project with name or id {name_or_id!r}")
    return project.id


async def quota_show(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    project_id = await _project_id(db, args.project)
    limits = await compute_quota.limits(db, project_id) | await storage_quota.storage_limits(
        db, project_id)
    usage = await compute_quota.usage(db, project_id) | storage_quota.storage_usage(
        await image_records.usage(db, project_id), await object_meta.usage(db, project_id))
    defaults = await compute_quota.defaults(db) | storage_quota.STORAGE_QUOTAS
    print_table(("Resource", "Limit", "In Use", "Source"), [
        (key, limit, usage.get(key, ""), "default" if limit == defaults[key] else "project")
        for key, limit in sorted(limits.items())])
    return 0


async def quota_set(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    project_id = await _project_id(db, args.project)
    changes: dict[str, int] = {}
    resources = DEFAULT_QUOTAS | storage_quota.STORAGE_QUOTAS
    for item in args.limits:
        resource, sep, value = item.partition("=")
        if not sep or resource not in resources:
            raise ManageError(f"bad quota {item!r}: use RESOURCE=N with RESOURCE one of "
                              + ", ".join(sorted(resources)))
        try:
            limit = int(value)
        except ValueError:
            raise ManageError(f"bad quota {item!r}: the limit must be an integer (-1: unlimited)")\
                from None
        if limit < -1:
            raise ManageError(f"bad quota {item!r}: the limit must be -1 (unlimited) or more")
        changes[resource] = limit
    async with db.transaction() as tx:
        await quota_limits.set_overrides(tx, project_id, changes, time.time())
    print(f"project {args.project}: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    return 0


# ----- networks and images: the network and image parts' own functions -------------------------
async def network_create(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    try:
        from cloudd.network import ipam
    except ImportError:
        raise ManageError("networking is not available in this build") from None
    net_cfg = cfg.network
    project_id = await _project_id(db, args.project) if args.project else None
    try:
        created = await ipam.create_networks(
            db, net_cfg.network_manager, args.label, args.cidr or net_cfg.fixed_range,
            num_networks=args.num_networks, network_size=args.network_size or net_cfg.network_size,
            bridge=args.bridge or net_cfg.flat_network_bridge,
            bridge_interface=args.bridge_interface or net_cfg.flat_interface or net_cfg.vlan_interface,
            vlan_start=args.vlan or net_cfg.vlan_start, project_id=project_id, dns1=args.dns1,
            multi_host=args.multi_host)
    except (ValueError, ipam.NetworkError) as exc:  # a bad CIDR, a taken range or VLAN
        raise ManageError(f"network create: {exc}") from None
    for row in created:
        vlan = f" vlan {row['vlan']}" if row.get("vlan") else ""
        print(f"network {row['label']}: {row['cidr']} on {row['bridge']}{vlan}")
    return 0


async def floating_create(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    from cloudd.db import DuplicateError

    try:
        from cloudd.network import floating
    except ImportError:
        raise ManageError("networking is not available in this build") from None
    try:
        count = await floating.create_floating_ips(
            db, args.cidr, args.pool, args.interface or cfg.network.public_interface or None)
    except ValueError as exc:
        raise ManageError(f"floating create: {exc}") from None
    except DuplicateError:
        raise ManageError(f"floating create: some addresses of {args.cidr} already exist") from None
    print(f"{count} floating IP(s) from {args.cidr} added to pool {args.pool}")
    return 0


def _progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr, redrawn in place."""
    if total > 0:
        percent = done * 100 // total
        bar = "#" * (percent // 4)
        sys.stderr.write(f"\r[{bar:<25}] {percent:3d}% {done // 2**20}/{total // 2**20} MiB")
    else:
        sys.stderr.write(f"\r{done // 2**20} MiB")
    sys.stderr.flush()


async def image_import(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    try:
        from cloudd.image.data import import_image
        from cloudd.image.records import image_store
    except ImportError:
        raise ManageError("image import is not available in this build") from None
    if not Path(args.file).is_file():  # noqa: ASYNC240  # a one-shot command: nothing else waits
        raise ManageError(f"image import: {args.file}: no such file")
    owner = await _project_id(db, args.project) if args.project else None
    try:
        image = await import_image(db, image_store(cfg), args.file, args.name,
                                   disk_format=args.disk_format, public=not args.private,
                                   owner=owner, progress=_progress)
    except ValueError as exc:
        raise ManageError(f"image import: {exc}") from None
    finally:
        sys.stderr.write("\n")
    print(f"image {image.name} imported: id {image.id}, {image.size} bytes,"
          f" {image.visibility}")
    return 0


def add_parsers(groups: Any) -> None:
    flavor = groups.add_parser("flavor", help="flavors: create, list, delete")
    fa = flavor.add_subparsers(dest="action", required=True)
    create = fa.add_parser("create", help="a new flavor")
    create.add_argument("name")
    create.add_argument("--ram", type=int, required=True, help="MiB")
    create.add_argument("--vcpus", type=int, required=True)
    create.add_argument("--disk", type=int, default=0, help="root disk GiB (default 0)")
    create.add_argument("--ephemeral", type=int, default=0, help="GiB")
    create.add_argument("--swap", type=int, default=0, help="MiB")
    create.add_argument("--id", help="flavor id (default: a new UUID)")
    create.add_argument("--private", action="store_true", help="not visible to every project")
    create.add_argument("--description")
    create.set_defaults(func=with_db(flavor_create))
    fa.add_parser("list", help="every flavor").set_defaults(func=with_db(flavor_list))
    delete = fa.add_parser("delete", help="delete a flavor (servers keep theirs)")
    delete.add_argument("flavor", help="name or id")
    delete.set_defaults(func=with_db(flavor_delete))

    quota = groups.add_parser("quota", help="project quotas: compute, and storage (images and "
                              "S3 objects, sizes in MiB)")
    qa = quota.add_subparsers(dest="action", required=True)
    show = qa.add_parser("show", help="a project's limits and usage")
    show.add_argument("project", help="name or id")
    show.set_defaults(func=with_db(quota_show))
    qset = qa.add_parser("set", help="override limits, e.g. instances=20 cores=40 (-1: unlimited)")
    qset.add_argument("project", help="name or id")
    qset.add_argument("limits", nargs="+", metavar="RESOURCE=N")
    qset.set_defaults(func=with_db(quota_set))

    from cloudd.manage.networks import network_list

    network = groups.add_parser("network", help="fixed networks and floating pools: list (the "
                                "default), create (nova-manage network create)")
    network.set_defaults(func=with_db(network_list))
    net_actions = network.add_subparsers(dest="action")
    net_actions.add_parser("list", help="networks and floating pools, with what is used").\
        set_defaults(func=with_db(network_list))
    net_create = net_actions.add_parser(
        "create", help="fixed network(s) for the configured [network] network_manager")
    net_create.add_argument("label")
    net_create.add_argument("--cidr", help="default: [network] fixed_range")
    net_create.add_argument("--num-networks", type=int, default=1)
    net_create.add_argument("--network-size", type=int, help="default: [network] network_size")
    net_create.add_argument("--vlan", type=int, help="first VLAN id (VLANManager)")
    net_create.add_argument("--bridge", help="default: [network] flat_network_bridge")
    net_create.add_argument("--bridge-interface")
    net_create.add_argument("--project", help="owner project, name or id (VLANManager)")
    net_create.add_argument("--dns1")
    net_create.add_argument("--multi-host", action="store_true")
    net_create.set_defaults(func=with_db(network_create))

    floating = groups.add_parser("floating", help="floating IP ranges")
    fl_create = floating.add_subparsers(dest="action", required=True).add_parser(
        "create", help="add every address of a range to a pool")
    fl_create.add_argument("cidr")
    fl_create.add_argument("--pool", default="nova")
    fl_create.add_argument("--interface", help="default: [network] public_interface")
    fl_create.set_defaults(func=with_db(floating_create))

    image = groups.add_parser("image", help="images")
    im_import = image.add_subparsers(dest="action", required=True).add_parser(
        "import", help="import a local image file (shows progress)")
    im_import.add_argument("file")
    im_import.add_argument("--name", required=True)
    im_import.add_argument("--disk-format", default="qcow2")
    im_import.add_argument("--private", action="store_true", help="visible to its project only")
    im_import.add_argument("--project", help="owner project, name or id (default: none)")
    im_import.set_defaults(func=with_db(image_import))
