"""EC2 image bundles made the way euca2ools made them (tar+gzip, AES-128-CBC with a random key
and IV, both encrypted to the cloud's CA certificate with PKCS#1 v1.5, a manifest, parts in a
bucket uploaded with boto3), registered with RegisterImage, booted; unsafe or undecryptable
bundles end in the `failed` state."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from harness.aws import Ec2Cloud, run
from harness.users import Keys

from .test_lifecycle import FAST

PART_SIZE = 64 * 1024


def tarball(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle(ca_pem: str, name: str, archive: bytes, kind: str = "machine",
           kernel: str | None = None) -> tuple[str, list[bytes]]:
    """(manifest XML, encrypted parts), as euca-bundle-image wrote them."""
    key, iv = os.urandom(16), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padder.update(archive) + padder.finalize()) + encryptor.finalize()
    public = x509.load_pem_x509_certificate(ca_pem.encode()).public_key()
    assert isinstance(public, rsa.RSAPublicKey)

    def seal(value: bytes) -> str:  # the hex string itself is what gets encrypted
        return public.encrypt(value.hex().encode(), rsa_padding.PKCS1v15()).hex()

    parts = [encrypted[i:i + PART_SIZE] for i in range(0, len(encrypted), PART_SIZE)]
    flags = {"kernel": "<kernel_id>true</kernel_id>", "ramdisk": "<ramdisk_id>true</ramdisk_id>",
             "machine": f"<kernel_id>{kernel}</kernel_id>" if kernel else ""}[kind]
    part_xml = "".join(f'<part index="{n}"><filename>{name}.part.{n}</filename></part>'
                       for n in range(len(parts)))
    manifest = (
        f"<?xml version='1.0'?><manifest><version>2007-10-10</version>"
        f"<machine_configuration><architecture>x86_64</architecture>{flags}"
        f"</machine_configuration><image><name>{name}</name>"
        f"<ec2_encrypted_key algorithm='AES-128-CBC'>{seal(key)}</ec2_encrypted_key>"
        f"<ec2_encrypted_iv>{seal(iv)}</ec2_encrypted_iv>"
        f"<parts count='{len(parts)}'>{part_xml}</parts></image></manifest>")
    return manifest, parts


async def ca_certificate(cloud: Ec2Cloud) -> str:
    """What euca2ools fetched: GET os-certificates/root of the Compute API."""
    code, body, _ = await cloud.call("GET", "/compute/v2.1/os-certificates/root")
    assert code == 200, body
    return str(body["certificate"]["data"])


async def upload(cloud: Ec2Cloud, keys: Keys, bucket: str, prefix: str, name: str,
                 manifest: str, parts: list[bytes]) -> str:
    s3 = cloud.client(keys, "s3")
    for n, data in enumerate(parts):
        await run(s3.put_object, Bucket=bucket, Key=f"{prefix}{name}.part.{n}", Body=data)
    await run(s3.put_object, Bucket=bucket, Key=f"{prefix}{name}.manifest.xml",
              Body=manifest.encode())
    return f"{bucket}/{prefix}{name}.manifest.xml"


async def settled(ec2: Any, image_id: str, limit: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        [image] = (await run(ec2.describe_images, ImageIds=[image_id]))["Images"]
        if image["State"] != "pending" or time.monotonic() > deadline:
            return dict(image)
        await asyncio.sleep(0.2)


async def test_bundle_registers_and_boots(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    ca = await ca_certificate(ec2cloud)
    await run(ec2cloud.client(keys, "s3").create_bucket, Bucket="bundles")
    ec2 = ec2cloud.client(keys)

    kernel_bytes = os.urandom(70_000)
    manifest, parts = bundle(ca, "vmlinuz", tarball({"vmlinuz": kernel_bytes}), "kernel")
    kernel_location = await upload(ec2cloud, keys, "bundles", "k/", "vmlinuz", manifest, parts)
    kernel_id = (await run(ec2.register_image, ImageLocation=kernel_location,
                                Name="vmlinuz"))["ImageId"]
    assert kernel_id.startswith("aki-")

    disk = os.urandom(200_000)  # more than one part
    manifest, parts = bundle(ca, "disk.img", tarball({"disk.img": disk, "extra": b"x"}),
                             kernel=kernel_id)
    assert len(parts) > 2
    location = await upload(ec2cloud, keys, "bundles", "m/", "disk.img", manifest, parts)
    image_id = (await run(ec2.register_image, ImageLocation=location, Name="bundled"))["ImageId"]
    assert image_id.startswith("ami-")
    await run(ec2.get_waiter("image_available").wait, ImageIds=[image_id, kernel_id],
              WaiterConfig=FAST)
    image = await settled(ec2, image_id)
    assert (image["State"], image["Name"], image["ImageLocation"], image["KernelId"]) == (
        "available", "bundled", location, kernel_id)

    # The Image API holds exactly the first member of the decrypted tarball.
    async with ec2cloud.session.get(f"{ec2cloud.base}/image/v2/images", headers={
            "X-Auth-Token": ec2cloud.admin_token}) as resp:
        records = {i["name"]: i for i in (await resp.json())["images"]}
    glance_id = records["bundled"]["id"]
    async with ec2cloud.session.get(f"{ec2cloud.base}/image/v2/images/{glance_id}/file", headers={
            "X-Auth-Token": ec2cloud.admin_token}) as resp:
        assert await resp.read() == disk
    assert records["bundled"]["kernel_id"] == records["vmlinuz"]["id"]

    [instance] = (await run(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1,
                            InstanceType="m1.tiny"))["Instances"]
    await run(ec2.get_waiter("instance_running").wait, InstanceIds=[instance["InstanceId"]],
              WaiterConfig=FAST)
    [res] = (await run(ec2.describe_instances, InstanceIds=[instance["InstanceId"]]))[
        "Reservations"]
    assert (res["Instances"][0]["ImageId"], res["Instances"][0]["KernelId"]) == (image_id,
                                                                                kernel_id)
    await run(ec2.terminate_instances, InstanceIds=[instance["InstanceId"]])


async def test_bad_bundles_fail(ec2cloud: Ec2Cloud) -> None:
    keys = await ec2cloud.credentials()
    ca = await ca_certificate(ec2cloud)
    await run(ec2cloud.client(keys, "s3").create_bucket, Bucket="bad")
    ec2 = ec2cloud.client(keys)
    escaping = tarball({"../../etc/evil": b"owned"})
    manifest, parts = bundle(ca, "evil", escaping)
    location = await upload(ec2cloud, keys, "bad", "", "evil", manifest, parts)
    evil = (await run(ec2.register_image, ImageLocation=location, Name="evil"))["ImageId"]
    image = await settled(ec2, evil)
    assert image["State"] == "failed" and image["StateReason"]["Code"] == "failed_untar"
    assert not (ec2cloud.state_dir.parent / "etc" / "evil").exists()

    manifest, parts = bundle(ca, "garbled", tarball({"disk": b"data"}))
    garbled = manifest.replace("<ec2_encrypted_key algorithm='AES-128-CBC'>",
                               "<ec2_encrypted_key algorithm='AES-128-CBC'>00")
    location = await upload(ec2cloud, keys, "bad", "", "garbled", garbled, parts)
    image = await settled(ec2, (await run(ec2.register_image, ImageLocation=location,
                                                   Name="garbled"))["ImageId"])
    assert image["State"] == "failed" and image["StateReason"]["Code"] == "failed_decrypt"

    other = await ec2cloud.credentials("other")

    with pytest.raises(ClientError) as info:  # another project's bucket is not readable
        await run(ec2cloud.client(other).register_image, ImageLocation=location,
                  Name="theirs")
    assert info.value.response["Error"]["Code"] == "InvalidManifest"
