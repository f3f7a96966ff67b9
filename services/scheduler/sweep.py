"""The scheduler's sweep: it takes the work nobody is doing (``cindermesh.db.work``).

Every ``sweep_interval`` seconds, in every scheduler replica:

* volumes accepted but not placed whose row has not changed for ``unplaced_grace`` seconds
  (their scheduler died, was never reached, or deferred them) are placed;
* placed volumes whose hand-off deadline or manager's lease has passed are taken back and
  placed again, as another attempt.

Every ``HOUSEKEEPING_INTERVAL`` seconds it also expires quota reservations older than
``reservation_expire`` and forgets idempotent-create records older than
``idempotency_window``. Replicas racing for the same row are resolved by its conditional
writes; a database that fails is logged and tried again at the next sweep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlmodel import col, delete

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeCreateRequest, utcnow
from cindermesh.settings import WorkSettings
from cindermesh.telemetry.request_id import new_request_id, request_id_var
from services.scheduler import volume_rows
from services.scheduler.scheduling import Scheduler
from services.scheduler.spec import ScheduleRequest

__all__ = ["HOUSEKEEPING_INTERVAL", "Sweep"]

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 60.0


class Sweep:
    def __init__(self, scheduler: Scheduler, db: Database, work: WorkSettings) -> None:
        self._scheduler = scheduler
        self._db = db
        self._work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        next_housekeeping = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.sweep_once()
                if loop.time() >= next_housekeeping:
                    await self.housekeeping()
                    next_housekeeping = loop.time() + HOUSEKEEPING_INTERVAL
            except Exception as error:
                log.warning("sweep failed, trying again: %r", error)
            await asyncio.sleep(self._work.sweep_interval)

    async def sweep_once(self) -> int:
        """Starts the schedules of the work nobody holds; returns how many it started."""
        started = 0
        taken_back: list[str] = []
        for volume_id, host, attempts in await volume_rows.abandoned(self._db):
            if self._scheduler.in_flight(volume_id):
                continue
            reason = f"The volume manager of {host} did not create the volume in time"
            if await volume_rows.take_back(
                self._db, volume_id, host, attempts, reason, lapsed_only=True
            ):
                log.warning("Volume %s: taken back from %s; placing it again", volume_id, host)
                taken_back.append(volume_id)
        cutoff = utcnow() - dt.timedelta(seconds=self._work.unplaced_grace)
        requests = await volume_rows.unplaced(self._db, cutoff)
        requests += await volume_rows.schedule_requests(self._db, taken_back)
        for request in requests:
            if self._scheduler.in_flight(request.spec.volume_id):
                continue
            self._submit(request)
            started += 1
        return started

    def _submit(self, request: ScheduleRequest) -> None:
        request_id_var.set(new_request_id())
        log.info("Volume %s: placing a volume nobody was placing", request.spec.volume_id)
        self._scheduler.submit(request)

    async def housekeeping(self) -> None:
        now = utcnow()
        async with self._db.session() as session:
            reservations_before = now - dt.timedelta(seconds=self._work.reservation_expire)
            if expired := await quota.expire_reservations(session, reservations_before):
                log.warning("expired %d quota reservations", expired)
        async with self._db.session() as session:
            requests_before = now - dt.timedelta(seconds=self._work.idempotency_window)
            await session.exec(
                delete(VolumeCreateRequest).where(
                    col(VolumeCreateRequest.created_at) < requests_before
                )
            )
