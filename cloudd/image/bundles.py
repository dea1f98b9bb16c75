"""EC2 image bundles (euca-bundle-image / ec2-bundle-image) registered from a bucket
(ec2-s3.md §15, Nova's S3ImageService._s3_create).

`register_bundle` reads and checks the manifest, creates a queued image whose `image_state`
property is `pending`, and returns it at once; a background task then downloads the parts
(in-process, from this object store), decrypts the AES key and IV with the cloud CA's private
key (CertService.decrypt_text), AES-CBC-decrypts the concatenated parts, un-gzips and untars
them safely (no absolute paths, no `..`, no links: the first member is the image) and uploads
the image. `image_state` moves downloading -> decrypting -> untarring -> uploading ->
available; a failure leaves `failed_<step>` and the image `killed`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import shutil
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cloudd import errors, storage_quota
from cloudd.cert.service import CertService
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.image import quota, records
from cloudd.image.chunks import file_chunks
from cloudd.objectstore import meta
from cloudd.objectstore.service import ObjectstoreService
from cloudd.objectstore.storage import ObjectStore, StorageError

LOG = logging.getLogger(__name__)
MAX_MANIFEST = 1024 * 1024
COPY_CHUNK = 1024 * 1024


class BundleError(errors.BadRequest):
    """The bundle cannot be registered; `code` is the EC2 error code (the EC2 API's only
    caller, which renders that code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Manifest:
    bucket: str
    key: str
    image_type: str  # ami | aki | ari
    architecture: str
    kernel_id: str | None  # EC2 ids as written in the manifest
    ramdisk_id: str | None
    encrypted_key: str  # hex
    encrypted_iv: str  # hex
    parts: list[str]  # object keys, in order


def _text(root: ET.Element, path: str) -> str | None:
    node = root.find(path)
    return node.text.strip() if node is not None and node.text else None


def parse_manifest(bucket: str, key: str, body: bytes) -> Manifest:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:  # no entity expansion from uploads
        raise BundleError("InvalidManifest", "The manifest may not contain a DOCTYPE")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BundleError("InvalidManifest", f"The manifest is not XML: {exc}") from None
    kernel = _text(root, "machine_configuration/kernel_id")
    ramdisk = _text(root, "machine_configuration/ramdisk_id")
    image_type = "aki" if kernel == "true" else "ari" if ramdisk == "true" else "ami"
    encrypted_key = _text(root, "image/ec2_encrypted_key")
    encrypted_iv = _text(root, "image/ec2_encrypted_iv")
    parts = []
    for part in sorted(root.findall("image/parts/part"), key=lambda p: int(p.get("index", "0"))):
        filename = _text(part, "filename")
        if not filename or "/" in filename or filename in (".", ".."):
            raise BundleError("InvalidManifest", f"Bad part file name {filename!r}")
        folder = key.rpartition("/")[0]  # parts sit next to their manifest
        parts.append(f"{folder}/{filename}" if folder else filename)
    if not encrypted_key or not encrypted_iv or not parts:
        raise BundleError("InvalidManifest",
                          "The manifest needs ec2_encrypted_key, ec2_encrypted_iv and parts")
    return Manifest(bucket, key, image_type,
                    _text(root, "machine_configuration/architecture") or "x86_64",
                    None if image_type != "ami" else kernel,
                    None if image_type != "ami" else ramdisk, encrypted_key, encrypted_iv, parts)


def split_location(location: str) -> tuple[str, str]:
    bucket, _, key = location.lstrip("/").partition("/")
    if not bucket or not key:
        raise BundleError("InvalidManifest", f"ImageLocation {location!r} is not bucket/key")
    return bucket, key


async def _read_object(db: Database, store: ObjectStore, bucket: str, key: str,
                       limit: int | None = None) -> bytes:
    info = await meta.get_object(db, bucket, key)
    if info is None:
        raise BundleError("InvalidManifest", f"{bucket}/{key} does not exist")
    if limit is not None and info.size > limit:
        raise BundleError("InvalidManifest", f"{bucket}/{key} is too large for a manifest")
    data = b""
    async with await store.open_read(bucket, info.blob) as reader:
        async for chunk in reader:
            data += chunk
    return data


def object_store(host: ServiceHost) -> ObjectStore:
    """The running object store's storage (the same files the S3 API serves)."""
    service = host.find(ObjectstoreService)
    store = getattr(service, "store", None)
    if store is None:
        store = ObjectStore(host.config.objectstore.buckets_path)
    return store


async def register_bundle(host: ServiceHost, project_id: str, location: str, *,
                          name: str | None, description: str | None,
                          resolve_image: Callable[[str], Awaitable[str]]) -> records.Image:
    """A queued image for the bundle at `location` (bucket/manifest key); its data follows in
    the background. `resolve_image` turns the manifest's aki-/ari- ids into image uuids."""
    db = host.get(DatabaseService).db
    bucket, key = split_location(location)
    row = await meta.get_bucket(db, bucket)
    if row is None or row.project_id != project_id:
        raise BundleError("InvalidManifest", f"{bucket}/{key} does not exist")
    body = await _read_object(db, object_store(host), bucket, key, MAX_MANIFEST)
    manifest = parse_manifest(bucket, key, body)
    properties = {"image_location": location, "image_state": "pending",
                  "architecture": manifest.architecture}
    if manifest.kernel_id:
        properties["kernel_id"] = await resolve_image(manifest.kernel_id)
    if manifest.ramdisk_id:
        properties["ramdisk_id"] = await resolve_image(manifest.ramdisk_id)
    if description:
        properties["description"] = description
    if not (await quota.room(db, project_id)).count_fits:
        raise BundleError("ResourceLimitExceeded", "The project has reached its "
                          "image_count_total quota.")
    image = await records.create(
        db, owner=project_id, name=name or PurePosixPath(key).name.removesuffix(".manifest.xml"),
        visibility="private", disk_format=manifest.image_type,
        container_format=manifest.image_type, properties=properties)
    host.create_task(lambda: _fill(host, image, manifest, project_id),
                     f"bundle {image.id}", None, restart=False)
    return image


async def _set_state(db: Database, image: records.Image, state: str, **values: str) -> None:
    current = await records.get(db, image.id)
    await records.update(db, image.id, {
        **values, "properties": {**current.properties, "image_state": state}})


async def _fill(host: ServiceHost, image: records.Image, manifest: Manifest,
                project_id: str) -> None:
    """The background half of the registration; it never raises (a crash would stop the host)."""
    db = host.get(DatabaseService).db
    work = Path(tempfile.mkdtemp(prefix="bundle-", dir=host.config.default.state_dir or None))
    step = "download"
    try:
        await _set_state(db, image, "downloading")
        encrypted = work / "image.encrypted"
        await _download(db, object_store(host), manifest, encrypted)
        step = "decrypt"
        await _set_state(db, image, "decrypting")
        cert = host.get(CertService)
        key = await _decrypt_hex(cert, project_id, manifest.encrypted_key)
        iv = await _decrypt_hex(cert, project_id, manifest.encrypted_iv)
        tarball = work / "image.tar.gz"
        await _to_thread(_aes_decrypt, encrypted, tarball, key, iv)
        encrypted.unlink()
        step = "untar"
        await _set_state(db, image, "untarring")
        # The unpacked image is bounded by what is left of the project's image quota before
        # anything is written: a small gzip can unpack to a huge file.
        space = await quota.room(db, project_id, new_item=False)
        raw = await _to_thread(_untar_first, tarball, work / "image", space.bytes_left)
        tarball.unlink()
        step = "upload"
        await _set_state(db, image, "uploading")
        await records.store_data(db, records.image_store(host.config), image.id,
                                 storage_quota.metered(file_chunks(raw), project_id, space,
                                                       _over_quota))
        await _set_state(db, image, "available")
        LOG.info("bundle %s registered as image %s", manifest.key, image.id)
    except Exception as exc:
        LOG.warning("bundle %s/%s failed at %s: %s", manifest.bucket, manifest.key, step, exc)
        try:
            await _set_state(db, image, f"failed_{step}", status="killed")
        except (records.ImageNotFound, records.ImageStateConflict):
            pass  # deregistered meanwhile
        except Exception:
            LOG.exception("recording the failure of image %s failed", image.id)
    finally:
        await _to_thread(shutil.rmtree, work, True)


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def _download(db: Database, store: ObjectStore, manifest: Manifest, dest: Path) -> None:
    """The parts, concatenated in order, streamed to `dest`."""
    handle: BinaryIO = await _to_thread(open, dest, "wb")
    try:
        for key in manifest.parts:
            info = await meta.get_object(db, manifest.bucket, key)
            if info is None:
                raise BundleError("InvalidManifest", f"part {key} is missing")
            try:
                async with await store.open_read(manifest.bucket, info.blob) as reader:
                    async for chunk in reader:
                        await _to_thread(handle.write, chunk)
            except StorageError as exc:
                raise BundleError("InvalidManifest", f"part {key}: {exc}") from None
    finally:
        await _to_thread(handle.close)


async def _decrypt_hex(cert: CertService, project_id: str, encrypted_hex: str) -> bytes:
    """The manifest's RSA-encrypted hex string of an AES key or IV -> the raw bytes."""
    try:
        ciphertext = bytes.fromhex(encrypted_hex)
        plain = await cert.decrypt_text(project_id, base64.b64encode(ciphertext).decode())
        return bytes.fromhex(plain.decode().strip())
    except (ValueError, binascii.Error) as exc:
        raise BundleError("InvalidManifest", f"bad encrypted key or IV: {exc}") from None


def _aes_decrypt(source: Path, dest: Path, key: bytes, iv: bytes) -> None:
    """AES-CBC (key size from the key: 128 as euca2ools) with PKCS#7 padding, streamed."""
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    with open(source, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(COPY_CHUNK):
            out.write(unpadder.update(decryptor.update(chunk)))
        out.write(unpadder.update(decryptor.finalize()) + unpadder.finalize())


def _over_quota() -> BundleError:
    return BundleError("ResourceLimitExceeded", "The image exceeds the project's "
                       "image_size_total quota.")


def _untar_first(tarball: Path, dest: Path, max_bytes: int | None = None) -> Path:
    """Check every member's path (Nova refused a tarball whose paths escape), then copy the
    first member, which must be a regular file of at most `max_bytes`, to `dest` (nothing
    else is extracted)."""
    with tarfile.open(tarball, "r:gz") as archive:
        members = archive.getmembers()
        if not members:
            raise BundleError("InvalidManifest", "the bundle's archive is empty")
        for member in members:
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or member.issym() or member.islnk():
                raise BundleError("InvalidManifest", f"unsafe path in the bundle: {member.name}")
        first = members[0]
        if not first.isfile():
            raise BundleError("InvalidManifest", "the bundle's first member is not a file")
        if max_bytes is not None and first.size > max_bytes:
            raise _over_quota()
        source = archive.extractfile(first)
        assert source is not None
        with source, open(dest, "wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
    return dest
