"""The Service row of this backend (Cinder's services table) and its heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cindermesh.db.engine import Database
from cindermesh.db.models import Service, utcnow
from cindermesh.settings import BackendSettings, Settings
from services.volume.domain import backend_host

__all__ = ["ServiceRegistration"]

log = logging.getLogger(__name__)


class ServiceRegistration:
    def __init__(self, db: Database, settings: Settings, backend: BackendSettings) -> None:
        self._db = db
        self._backend = backend
        self.host = backend_host(settings.host_name, backend.name)
        self._task: asyncio.Task[None] | None = None

    async def register(self) -> str:
        """Inserts or refreshes the row; returns the service uuid."""
        async with self._db.session() as session:
            service = await session.get(Service, self.host, with_for_update=True)
            if service is None:
                service = Service(
                    host=self.host,
                    address=self._backend.address,
                    availability_zone=self._backend.availability_zone,
                )
            service.address = self._backend.address
            service.availability_zone = self._backend.availability_zone
            service.updated_at = utcnow()
            session.add(service)
        log.info("registered service %s at %s", self.host, self._backend.address)
        return service.uuid

    async def heartbeat(self) -> None:
        async with self._db.session() as session:
            service = await session.get(Service, self.host, with_for_update=True)
            if service is not None:
                service.updated_at = utcnow()
                session.add(service)
        if service is None:  # someone removed the row: register again
            await self.register()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="service-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._backend.report_interval)
            try:
                await self.heartbeat()
            except Exception:
                log.exception("service heartbeat failed")
