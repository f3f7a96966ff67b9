"""The snapshot side of a volume manager: takes snapshot work, holds it, runs it as background
tasks among the manager's own (``services.volume.manager``), keyed ``snapshot-<id>`` so that a
snapshot's create and delete never run at once and the manager's renewals, ``join`` and
``stop`` cover them.

A snapshot is this manager's when its volume is placed on its backend. Its work is claimed
when the api hands it over (CreateSnapshot, DeleteSnapshot), when the sweep finds a snapshot
of this backend in ``creating`` or ``deleting`` that nobody holds, for all of them when the
manager starts, and for a volume's ``deleting`` snapshots when a cascading volume delete runs
(they go before the volume).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from cindermesh.db.models import SnapshotStatus
from cindermesh.telemetry.request_id import new_request_id, request_id_var
from services.volume import snapshot_store
from services.volume.errors import SnapshotNotFound, SnapshotStateChanged
from services.volume.snapshot_flows import (
    SnapshotServices,
    run_create_snapshot,
    run_delete_snapshot,
)

__all__ = ["SnapshotWork", "snapshot_key"]

log = logging.getLogger(__name__)

_NOT_OURS = (SnapshotNotFound, SnapshotStateChanged)
_KEY = "snapshot-"

Work = Coroutine[Any, Any, None]


def snapshot_key(snapshot_id: str) -> str:
    """The snapshot's key among the manager's work in progress (volumes use their id)."""
    return f"{_KEY}{snapshot_id}"


class SnapshotWork:
    def __init__(
        self,
        services: SnapshotServices,
        backend_host: str,
        lease: float,
        tasks: Mapping[str, asyncio.Task[None]],
        spawn: Callable[[str, Work], None],
        on_capacity_change: Callable[[], None],
    ) -> None:
        self._s = services
        self._backend_host = backend_host
        self._lease = lease
        #: The manager's work in progress, by key (read only here; ``spawn`` adds to it).
        self._tasks = tasks
        self._spawn = spawn
        self._on_capacity_change = on_capacity_change

    async def accept_create(self, snapshot_id: str) -> None:
        """Claims a ``creating`` snapshot of a volume placed here and starts its create flow;
        raises SnapshotNotFound or SnapshotStateChanged if it cannot be accepted."""
        key = snapshot_key(snapshot_id)
        if key in self._tasks:
            log.info("snapshot %s: create already in progress", snapshot_id)
            return
        if await self._claim(snapshot_id, SnapshotStatus.CREATING) and key not in self._tasks:
            self._spawn(key, self._create(snapshot_id))

    async def accept_delete(self, snapshot_id: str) -> None:
        """Claims and starts the delete of a ``deleting`` snapshot (after its create, if that
        still runs); a row already gone is accepted."""
        try:
            snapshot = await snapshot_store.get(self._s.db, snapshot_id)
        except SnapshotNotFound as gone:
            log.info("snapshot %s: already deleted (%s)", snapshot_id, gone)
            return
        if snapshot.status != SnapshotStatus.DELETING:
            raise SnapshotStateChanged(snapshot_id, SnapshotStatus.DELETING, snapshot.status)
        if await self._claim(snapshot_id, SnapshotStatus.DELETING):
            key = snapshot_key(snapshot_id)
            self._spawn(key, self._delete(snapshot_id, self._tasks.get(key)))

    async def delete_snapshots_of(self, volume_id: str) -> bool:
        """A cascading volume delete: the volume's ``deleting`` snapshots go first, each as
        its own piece of work. Whether the volume has no snapshot left."""
        for _ in range(3):
            deleting, total = await snapshot_store.deleting_of_volume(self._s.db, volume_id)
            if total == 0:
                return True
            running = [await self._delete_task(i) for i in deleting]
            waits = {task for task in running if task is not None}
            if not waits:
                break
            await asyncio.wait(waits)
        return (await snapshot_store.deleting_of_volume(self._s.db, volume_id))[1] == 0

    async def recover(self) -> None:
        """Takes over and restarts the snapshot work a previous run left unfinished."""
        for snapshot in await snapshot_store.take_over(
            self._s.db, self._backend_host, self._s.worker, self._lease
        ):
            log.info("snapshot %s: resuming an interrupted %s", snapshot.id, snapshot.status)
            self._start(snapshot.id, snapshot.status, self._recovering)

    async def sweep_once(self) -> None:
        """Claims and starts this backend's snapshot work nobody holds."""
        for snapshot_id, status in await snapshot_store.unclaimed(self._s.db, self._backend_host):
            key = snapshot_key(snapshot_id)
            if key in self._tasks:
                continue
            try:
                claimed = await self._claim(snapshot_id, status)
            except _NOT_OURS:
                continue
            if not claimed or key in self._tasks:
                continue
            request_id_var.set(new_request_id())
            log.info("snapshot %s: taking %s work nobody held", snapshot_id, status)
            self._start(snapshot_id, status, None)

    async def renew(self, held: list[str]) -> int:
        """Extends the leases of the snapshots among the manager's work keys ``held``."""
        ids = [key.removeprefix(_KEY) for key in held if key.startswith(_KEY)]
        return await snapshot_store.renew(self._s.db, self._s.worker, ids, self._lease)

    def _start(self, snapshot_id: str, status: str, wrap: Callable[[Work], Work] | None) -> None:
        if status == SnapshotStatus.CREATING:
            work = self._create(snapshot_id)
        else:
            work = self._delete(snapshot_id, None)
        self._spawn(snapshot_key(snapshot_id), wrap(work) if wrap is not None else work)

    @staticmethod
    async def _recovering(work: Work) -> None:
        request_id_var.set(new_request_id())
        await work

    async def _claim(self, snapshot_id: str, status: str) -> bool:
        claimed = await snapshot_store.claim(
            self._s.db, snapshot_id, status, self._backend_host, self._s.worker, self._lease
        )
        if claimed is None:
            log.info("snapshot %s: held by another worker", snapshot_id)
        return claimed is not None

    async def _create(self, snapshot_id: str) -> None:
        await run_create_snapshot(self._s, snapshot_id)
        self._on_capacity_change()

    async def _delete(self, snapshot_id: str, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait({before})
        await run_delete_snapshot(self._s, snapshot_id)
        self._on_capacity_change()

    async def _delete_task(self, snapshot_id: str) -> asyncio.Task[None] | None:
        """The work deleting the snapshot: in progress already, or started now if it can be."""
        key = snapshot_key(snapshot_id)
        if (running := self._tasks.get(key)) is not None:
            return running
        try:
            if not await self._claim(snapshot_id, SnapshotStatus.DELETING):
                return None
        except _NOT_OURS:
            return None
        if key not in self._tasks:
            self._spawn(key, self._delete(snapshot_id, None))
        return self._tasks.get(key)
