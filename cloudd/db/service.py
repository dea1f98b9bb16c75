"""The database as a service of the controller: connected and migrated before anything else;
and `OnHost`, what the domains' front doors that read through it are made of."""

from __future__ import annotations

from pathlib import Path

from cloudd import db as dbmod
from cloudd.core import Service, ServiceHealth, ServiceHost


class DatabaseHealth(ServiceHealth):
    dialect: str | None = None


class DatabaseService(Service):
    name = "database"

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self._db: dbmod.Database | None = None

    @property
    def db(self) -> dbmod.Database:
        if self._db is None:
            raise RuntimeError("database service not started")
        return self._db

    async def start(self) -> None:
        cfg = self.host.config.database
        url = cfg.connection
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._db = await dbmod.connect(url, pool_size=cfg.pool_size)
        await self._db.migrate()

    async def stop(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def health(self) -> DatabaseHealth:
        report = DatabaseHealth(**self.state_fields())
        if self._db is not None:  # once connected
            report.dialect = self._db.dialect
        return report


class OnHost:
    """A domain's front door (ComputeAPI, NetworkAPI, ImageAPI): made for one request on the
    controller's host, it reads the database service's connection when used (the service
    connects when it starts, which may be after the object is made)."""

    def __init__(self, host: ServiceHost) -> None:
        self.host = host

    @property
    def db(self) -> dbmod.Database:
        return self.host.get(DatabaseService).db
