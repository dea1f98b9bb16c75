"""The S3 object store as a controller service, on its own port ([objectstore] listen:port) as
Nova's nova-objectstore was: S3 and EC2 requests cannot share a port (a SigV2 request does not
say which service it is for)."""

from __future__ import annotations

import logging
import ssl
import time

from cloudd.core import Service, ServiceHealth, ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.listener import Listener
from cloudd.objectstore import meta
from cloudd.objectstore.app import s3_app
from cloudd.objectstore.storage import ObjectStore, StorageError

LOG = logging.getLogger(__name__)
GC_INTERVAL = 3600.0  # seconds between sweeps for unreferenced files
GC_MIN_AGE = 3600.0  # a file nobody refers to for this long is a crash leftover


async def collect_garbage(db: Database, store: ObjectStore, min_age: float) -> int:
    """Remove files of every bucket that no row refers to (uploads a crash interrupted, or the
    old file of an overwrite that crashed before its deletion); return how many went."""
    removed = 0
    for bucket in await meta.bucket_names(db):
        try:
            removed += await store.collect_garbage(bucket, older_than=min_age)
            referenced = await meta.referenced_blobs(db, bucket)
            cutoff = time.time() - min_age
            for stored in await store.list(bucket):
                if stored.key not in referenced and stored.modified <= cutoff:
                    await store.delete(bucket, stored.key)
                    removed += 1
        except StorageError:
            LOG.warning("garbage collection of bucket %s failed", bucket, exc_info=True)
    return removed


async def expire_uploads(db: Database, store: ObjectStore, max_age: float) -> int:
    """Abort the multipart uploads begun more than `max_age` seconds ago (S3's lifecycle rule
    AbortIncompleteMultipartUpload, always on): their parts would otherwise hold disk and
    quota forever. Returns how many were aborted."""
    uploads = await meta.uploads_begun_before(db, time.time() - max_age)
    for upload in uploads:
        for blob in await meta.finish_upload(db, upload.upload_id):
            try:
                await store.delete(upload.bucket, blob)
            except StorageError:  # the garbage sweep removes it later
                LOG.warning("could not delete part %s of bucket %s", blob, upload.bucket)
        LOG.info("multipart upload %s in bucket %s expired", upload.upload_id, upload.bucket)
    return len(uploads)


class ObjectstoreHealth(ServiceHealth):
    url: str | None = None


class ObjectstoreService(Service):
    name = "objectstore"
    depends = ("database",)

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.listener = Listener()
        self.port: int | None = None
        self.public_url = ""
        self.store: ObjectStore | None = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        cfg = self.host.config.objectstore
        if not cfg.ssl_cert_file:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cfg.ssl_cert_file, cfg.ssl_key_file or None)
        return context

    async def start(self) -> None:
        cfg = self.host.config.objectstore
        db = self.host.get(DatabaseService).db
        self.store = ObjectStore(cfg.buckets_path)
        # Nothing is uploading yet, so every unreferenced file is a crash leftover.
        removed = await collect_garbage(db, self.store, min_age=0.0)
        if removed:
            LOG.info("removed %d unreferenced object files left by an earlier crash", removed)
        tls = self._ssl_context()
        # Another process (or a second controller in this one) may serve this port: the rest of
        # the controller still works; /healthz and the log say S3 is not served here.
        app = s3_app(db, self.store, cfg, self.host.config.ec2.region)
        if not await self.listener.start_optional(self, "S3", app, cfg.listen, cfg.port, tls):
            return
        self.port = self.listener.port
        scheme = "https" if tls else "http"
        self.public_url = cfg.public_url or f"{scheme}://{self.host.config.default.my_ip}:{self.port}"
        self.host.periodic(GC_INTERVAL, lambda: self._sweep(db), "objectstore-gc", self)
        self.host.periodic(min(GC_INTERVAL, cfg.multipart_expiry / 2),
                           lambda: self._expire(db), "objectstore-multipart-expiry", self)
        LOG.info("S3 object store listening on %s://%s:%s", scheme, cfg.listen, self.port)

    async def _sweep(self, db: Database) -> None:
        assert self.store is not None
        await collect_garbage(db, self.store, GC_MIN_AGE)

    async def _expire(self, db: Database) -> None:
        assert self.store is not None
        await expire_uploads(db, self.store, self.host.config.objectstore.multipart_expiry)

    async def stop(self) -> None:
        await self.listener.stop()

    def health(self) -> ObjectstoreHealth:
        report = ObjectstoreHealth(**self.state_fields())
        if self.public_url:  # once the port is bound
            report.url = self.public_url
        return report
