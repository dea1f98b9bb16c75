"""EC2 and images: a bundle whose disk names a host file is refused (state failed, no bytes
kept), and RunInstances refuses kernels/ramdisks the project may not use or of the wrong kind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from crafted_images import make_image
from harness.aws import Ec2Cloud, run

from cloudd.api.ec2 import ids
from cloudd.image import records
from cloudd.image.records import image_store

from .test_bundles import bundle, ca_certificate, settled, tarball, upload


async def test_bundle_whose_disk_names_a_host_file_fails(ec2cloud: Ec2Cloud, tmp_path: Path) -> None:
    keys = await ec2cloud.credentials("bundler")
    await run(ec2cloud.client(keys, "s3").create_bucket, Bucket="bundles")
    ec2 = ec2cloud.client(keys)
    crafted = await asyncio.to_thread(make_image, "qcow2-backing-file", tmp_path)
    manifest, parts = bundle(await ca_certificate(ec2cloud), "disk.img",
                             tarball({"disk.img": crafted.read_bytes()}))
    location = await upload(ec2cloud, keys, "bundles", "m/", "disk.img", manifest, parts)
    image_id = (await run(ec2.register_image, ImageLocation=location, Name="evil"))["ImageId"]
    image = await settled(ec2, image_id)
    assert image["State"] == "failed"
    uuid = await ids.uuid_for(ec2cloud.db, ids.IMAGE, image_id)
    record = await records.get(ec2cloud.db, uuid)
    assert (record.status, record.size) == ("killed", None)
    assert not await image_store(ec2cloud.host.config).exists(records.BUCKET, uuid)
    with pytest.raises(ClientError) as refused:
        await run(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                  InstanceType="m1.tiny")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


async def _image(cloud: Ec2Cloud, owner: str, disk_format: str, **properties: str) -> str:
    image = await records.create(cloud.db, owner=owner, name=disk_format, visibility="private",
                                 disk_format=disk_format, container_format=disk_format
                                 if disk_format in ("aki", "ari") else "bare",
                                 properties=properties)
    await records.update(cloud.db, image.id, {"status": "active", "size": 0})
    return str(image.id)


async def test_run_instances_refuses_unusable_boot_files(ec2cloud: Ec2Cloud) -> None:
    owner = await ec2cloud.credentials("ramdisk-owner")
    tenant = await ec2cloud.credentials("tenant")
    ec2 = ec2cloud.client(tenant)
    foreign = await _image(ec2cloud, owner.project_id, "ari")
    not_a_ramdisk = await _image(ec2cloud, tenant.project_id, "qcow2")
    for ramdisk, message in ((foreign, "could not be found"),
                             (not_a_ramdisk, "is not an ari image")):
        machine = await _image(ec2cloud, tenant.project_id, "ami", ramdisk_id=ramdisk)
        with pytest.raises(ClientError) as refused:
            await run(ec2.run_instances, ImageId=await ids.ec2_id(ec2cloud.db, ids.IMAGE, machine),
                      MinCount=1, MaxCount=1, InstanceType="m1.tiny")
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidParameterValue" and message in error["Message"], error
    assert (await run(ec2.describe_instances))["Reservations"] == []
