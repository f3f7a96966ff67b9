"""The volume manager's domain side: accepts work, runs it in background tasks.

An accepted create or delete runs as an ``asyncio`` task that inherits the caller's context
(trace context and request id), so its spans and log lines belong to the request's trace. At
most one piece of work per volume runs at a time: a delete accepted while the create of the
same volume still runs waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from cindermesh.db.models import VolumeStatus
from cindermesh.telemetry.request_id import new_request_id, request_id_var
from services.volume import store
from services.volume.create_flow import FlowServices, run_create
from services.volume.delete import run_delete
from services.volume.domain import CreateRequest, backend_of
from services.volume.errors import VolumeNotFound, VolumeStateChanged, WrongBackend
from services.volume.recovery import find_unfinished

__all__ = ["Manager"]

log = logging.getLogger(__name__)


class Manager:
    def __init__(
        self,
        services: FlowServices,
        backend_host: str,
        on_capacity_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._s = services
        #: host@backend this manager serves.
        self.backend_host = backend_host
        self._on_capacity_change = on_capacity_change
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def busy(self) -> int:
        """Volumes with work in progress."""
        return len(self._tasks)

    def _check_host(self, host: str) -> None:
        if backend_of(host) != self.backend_host:
            raise WrongBackend(f"host {host!r} is not served by {self.backend_host}")

    async def accept_create(self, request: CreateRequest) -> None:
        """Checks the row and starts the create flow; raises VolumeNotFound,
        VolumeStateChanged or WrongBackend if the create cannot be accepted."""
        self._check_host(request.host)
        volume = await store.get_volume(self._s.db, request.volume_id)
        if volume.status != VolumeStatus.CREATING:
            raise VolumeStateChanged(volume.id, VolumeStatus.CREATING, volume.status)
        if request.volume_id in self._tasks:
            log.info("Volume %s: create already in progress", request.volume_id)
            return
        self._spawn(request.volume_id, self._create(request))

    async def accept_delete(self, volume_id: str) -> None:
        """Starts the delete of a ``deleting`` volume; a row already gone is accepted (there
        is nothing left to do)."""
        try:
            volume = await store.get_volume(self._s.db, volume_id)
        except VolumeNotFound:
            log.info("Volume %s: already deleted", volume_id)
            return
        if volume.status != VolumeStatus.DELETING:
            raise VolumeStateChanged(volume.id, VolumeStatus.DELETING, volume.status)
        if volume.host is not None:
            self._check_host(volume.host)
        self._spawn(volume_id, self._delete(volume_id, self._tasks.get(volume_id)))

    async def _create(self, request: CreateRequest) -> None:
        await run_create(self._s, request)
        self._on_capacity_change()

    async def _delete(self, volume_id: str, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait({before})
        await run_delete(self._s.db, self._s.driver, volume_id)
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
        """Restarts what a previous run left unfinished (see ``recovery``)."""
        unfinished = await find_unfinished(self._s.db, self.backend_host)
        for request in unfinished.creates:
            log.info("Volume %s: resuming an interrupted create", request.volume_id)
            self._spawn(request.volume_id, self._recovering(self._create(request)))
        for volume_id in unfinished.deletes:
            log.info("Volume %s: resuming an interrupted delete", volume_id)
            self._spawn(volume_id, self._recovering(self._delete(volume_id, None)))

    @staticmethod
    async def _recovering(work: Coroutine[Any, Any, None]) -> None:
        request_id_var.set(new_request_id())
        await work

    async def join(self) -> None:
        """Waits for the work in progress (tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks.values()))

    async def stop(self, grace: float) -> None:
        """Lets work in progress finish for ``grace`` seconds, then cancels it (an interrupted
        create stays ``creating`` and is resumed by the next start's recovery)."""
        tasks = set(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
