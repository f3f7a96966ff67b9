"""The volume manager's domain side: takes work, holds it, runs it in background tasks.

A manager works on a volume only while it holds it on the row (``services.volume.store``):
it claims a volume when the scheduler hands it over (or the api asks for a delete), when its
sweep finds one of its backend's volumes nobody holds, and for all of them when it starts
(``services.volume.recovery``). While it works it renews the lease of what it holds; a
manager that dies loses its volumes to a reschedule once the lease lapses.

An accepted create or delete runs as an ``asyncio`` task that inherits the caller's context
(trace context and request id), so its spans and log lines belong to the request's trace. At
most one piece of work per volume runs at a time: a delete accepted while the create of the
same volume still runs waits for it.

The snapshots of the volumes placed here are this manager's too (``snapshot_work``): their
work runs among the volumes', a cascading volume delete removes them before the volume. So are
the connections of hosts to its volumes (``connections``): answered at once, holding nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from cindermesh.db.models import Volume, VolumeStatus
from cindermesh.telemetry.request_id import new_request_id, request_id_var
from services.volume import recovery, store
from services.volume.action_services import ActionServices
from services.volume.connections import Connections
from services.volume.create_flow import FlowServices, run_create
from services.volume.delete import run_delete
from services.volume.domain import CreateRequest, backend_of
from services.volume.errors import (
    UnsupportedDriver,
    VolumeNotFound,
    VolumeStateChanged,
    WrongBackend,
)
from services.volume.extend_flow import run_extend
from services.volume.migrate_flow import MigrationServices, MigrationWork
from services.volume.revert_flow import run_revert
from services.volume.snapshot_flows import SnapshotServices
from services.volume.snapshot_work import SnapshotWork

__all__ = ["Manager", "ManagerTiming", "new_worker_id"]

log = logging.getLogger(__name__)

#: Errors that mean the volume is not this manager's to work on.
_NOT_OURS = (VolumeNotFound, VolumeStateChanged)


def new_worker_id(backend_host: str) -> str:
    """An id for this run of the manager of ``backend_host``."""
    return f"{backend_host}/{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ManagerTiming:
    #: Seconds a claim lasts (``WorkSettings.manager_lease``); renewed every third of it.
    lease: float = 6.0
    #: Seconds between two sweeps (``WorkSettings.sweep_interval``).
    sweep_interval: float = 1.0


class Manager:
    def __init__(
        self,
        services: FlowServices,
        backend_host: str,
        on_capacity_change: Callable[[], None] = lambda: None,
        timing: ManagerTiming = ManagerTiming(),
        actions: ActionServices | None = None,
        snapshots: SnapshotServices | None = None,
        connections: Connections | None = None,
        migrations: MigrationServices | None = None,
    ) -> None:
        self._s = services
        #: The extend and revert flows' services (None: this manager serves neither).
        self._actions = actions
        #: host@backend this manager serves.
        self.backend_host = backend_host
        self._on_capacity_change = on_capacity_change
        self._timing = timing
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: The snapshot work (None: this manager serves no snapshots).
        self.snapshots = (
            SnapshotWork(
                snapshots, backend_host, timing.lease, self._tasks, self._spawn, on_capacity_change
            )
            if snapshots is not None
            else None
        )
        #: The connection operations (None: this manager serves no connections).
        self.connections = connections
        #: The migrations to and from this backend (None: this manager migrates nothing).
        self.migrations = (
            MigrationWork(migrations, timing.lease, self._tasks, self._spawn, on_capacity_change)
            if migrations is not None
            else None
        )
        self._maintenance: asyncio.Task[None] | None = None
        #: Stopping: the maintenance renews the leases of the work in progress, takes no more.
        self._draining = False

    @property
    def busy(self) -> int:
        """Volumes with work in progress."""
        return len(self._tasks)

    @property
    def worker(self) -> str:
        return self._s.worker

    def _check_host(self, host: str) -> None:
        if backend_of(host) != self.backend_host:
            raise WrongBackend(f"host {host!r} is not served by {self.backend_host}")

    async def accept_create(self, request: CreateRequest) -> None:
        """Claims the volume and starts the create flow; raises VolumeNotFound,
        VolumeStateChanged or WrongBackend if the create cannot be accepted."""
        self._check_host(request.host)
        if request.volume_id in self._tasks:
            log.info("Volume %s: create already in progress", request.volume_id)
            return
        volume = await self._claim(request.volume_id, VolumeStatus.CREATING, request.host)
        if volume is not None and request.volume_id not in self._tasks:
            self._spawn(request.volume_id, self._create(request))

    async def accept_delete(self, volume_id: str) -> None:
        """Claims and starts the delete of a ``deleting`` volume; a row already gone is
        accepted (there is nothing left to do)."""
        try:
            volume = await store.get_volume(self._s.db, volume_id)
        except VolumeNotFound as gone:
            log.info("Volume %s: already deleted (%s)", volume_id, gone)
            return
        if volume.status != VolumeStatus.DELETING:
            raise VolumeStateChanged(volume.id, VolumeStatus.DELETING, volume.status)
        if volume.host is not None:
            self._check_host(volume.host)
        if await self._claim(volume_id, VolumeStatus.DELETING) is not None:
            self._spawn(volume_id, self._delete(volume_id, self._tasks.get(volume_id)))

    async def accept_extend(self, volume_id: str) -> None:
        """Claims and starts the extend of an ``extending`` volume of this backend; raises
        VolumeNotFound, VolumeStateChanged or WrongBackend if it cannot be accepted."""
        await self._accept_action(volume_id, VolumeStatus.EXTENDING)

    async def accept_revert(self, volume_id: str) -> None:
        """Claims and starts the revert of a ``reverting`` volume of this backend to its
        ``restoring`` snapshot (the raises of ``accept_extend``)."""
        await self._accept_action(volume_id, VolumeStatus.REVERTING)

    async def _accept_action(self, volume_id: str, status: str) -> None:
        volume = await store.get_volume(self._s.db, volume_id)
        if volume.status != status or volume.host is None:
            raise VolumeStateChanged(volume.id, status, volume.status)
        self._check_host(volume.host)
        if volume_id in self._tasks:
            log.info("Volume %s: %s already in progress", volume_id, status)
            return
        claimed = await self._claim(volume_id, status)
        if claimed is not None and volume_id not in self._tasks:
            self._spawn(volume_id, self._action(claimed))

    def _action_services(self) -> ActionServices:
        if self._actions is None:
            raise UnsupportedDriver(f"{self.backend_host} serves no volume actions")
        return self._actions

    async def _action(self, volume: Volume) -> None:
        """The work of a claimed volume in ``extending`` or ``reverting``."""
        services = self._action_services()
        if volume.status == VolumeStatus.EXTENDING:
            await run_extend(services, volume.id)
            self._on_capacity_change()
        else:
            await run_revert(services, volume.id)

    async def _claim(self, volume_id: str, status: str, host: str | None = None) -> Volume | None:
        volume = await store.claim(
            self._s.db, volume_id, status, self.backend_host, self.worker, self._timing.lease, host
        )
        if volume is None:
            log.info("Volume %s: held by another worker", volume_id)
        return volume

    async def _create(self, request: CreateRequest) -> None:
        await run_create(self._s, request)
        self._on_capacity_change()

    async def _delete(self, volume_id: str, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait({before})
        if self.snapshots is not None and not await self.snapshots.delete_snapshots_of(volume_id):
            log.error("Volume %s: delete failed: a snapshot of it is left", volume_id)
            deleting, failed = VolumeStatus.DELETING, VolumeStatus.ERROR_DELETING
            await store.set_status(self._s.db, volume_id, deleting, failed, self.worker)
            return
        await run_delete(self._s.db, self._s.driver, volume_id, self.worker)
        self._on_capacity_change()

    def _spawn(self, volume_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"volume-{volume_id}")
        self._tasks[volume_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._tasks.get(volume_id) is finished:
                del self._tasks[volume_id]
            if not finished.cancelled() and (error := finished.exception()) is not None:
                log.error("Volume %s: background work failed: %r", volume_id, error)

        task.add_done_callback(done)

    async def recover(self) -> None:
        """Takes over and restarts what a previous run left unfinished, and removes the images
        of volumes no longer placed here (see ``recovery``)."""
        if self.snapshots is not None:
            await self.snapshots.recover()
        unfinished = await recovery.take_over(
            self._s.db, self.backend_host, self.worker, self._timing.lease
        )
        for request in unfinished.creates:
            log.info("Volume %s: resuming an interrupted create", request.volume_id)
            self._spawn(request.volume_id, self._recovering(self._create(request)))
        for volume_id in unfinished.deletes:
            log.info("Volume %s: resuming an interrupted delete", volume_id)
            self._spawn(volume_id, self._recovering(self._delete(volume_id, None)))
        for volume in unfinished.actions:
            log.info("Volume %s: resuming an interrupted %s", volume.id, volume.status)
            self._spawn(volume.id, self._recovering(self._action(volume)))
        if self.migrations is not None:
            await self.migrations.recover()
        images = await self._s.driver.list_volumes()
        for volume_id in await recovery.orphans(self._s.db, self.backend_host, images):
            log.warning("Volume %s: removing an image no volume placed here owns", volume_id)
            await self._s.driver.delete_volume(volume_id)
        if images:
            self._on_capacity_change()

    async def sweep_once(self) -> None:
        """Claims and starts this backend's work nobody holds."""
        if self.snapshots is not None:
            await self.snapshots.sweep_once()
        if self.migrations is not None:
            await self.migrations.sweep_once()
        for volume_id, status in await store.unclaimed(self._s.db, self.backend_host):
            if volume_id in self._tasks:
                continue
            try:
                volume = await self._claim(volume_id, status)
            except _NOT_OURS:
                continue
            if volume is None or volume_id in self._tasks:
                continue
            request_id_var.set(new_request_id())
            log.info("Volume %s: taking %s work nobody held", volume_id, status)
            if status == VolumeStatus.CREATING:
                request = await recovery.create_request(self._s.db, volume)
                if volume_id in self._tasks:
                    # A delete accepted meanwhile holds it now: its work goes first.
                    continue
                work = self._create(request)
            elif status == VolumeStatus.DELETING:
                work = self._delete(volume_id, None)
            else:
                work = self._action(volume)
            self._spawn(volume_id, work)

    def start_maintenance(self) -> None:
        """Renews the leases of what this manager holds and sweeps, until ``stop``."""
        self._maintenance = asyncio.create_task(self._maintain(), name="manager-maintenance")

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        next_renewal = 0.0
        while True:
            try:
                if self._tasks and loop.time() >= next_renewal:
                    held = list(self._tasks)
                    await store.renew(self._s.db, self.worker, held, self._timing.lease)
                    if self.snapshots is not None:
                        await self.snapshots.renew(held)
                    next_renewal = loop.time() + self._timing.lease / 3
                if not self._draining:
                    await self.sweep_once()
            except Exception as error:
                log.warning("manager maintenance failed, trying again: %r", error)
            await asyncio.sleep(min(self._timing.sweep_interval, self._timing.lease / 3))

    @staticmethod
    async def _recovering(work: Coroutine[Any, Any, None]) -> None:
        request_id_var.set(new_request_id())
        await work

    async def join(self) -> None:
        """Waits for the work in progress (tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks.values()))

    async def stop(self, grace: float) -> None:
        """Stops sweeping, lets work in progress finish for ``grace`` seconds (its leases
        still renewed, so that no scheduler takes it meanwhile), then cancels it (an
        interrupted create stays ``creating`` and is resumed by the next start)."""
        self._draining = True
        tasks = set(self._tasks.values())
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
