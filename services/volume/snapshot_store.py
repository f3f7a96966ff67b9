"""The volume manager's reads and writes of snapshot rows, one transaction per function; the
writes are the shared repository's (``cindermesh.db.snapshots``), in the manager's terms.

As for volumes (``services.volume.store``), a manager works on a snapshot only while it holds
it: ``worker`` on the row is its instance id, taken by a conditional write and kept by
renewing the lease; every later write is conditional on it still holding the row. A snapshot
is this backend's when its volume is placed here.
"""

from __future__ import annotations

from sqlmodel import col, select

from cindermesh.db import snapshots
from cindermesh.db.engine import Database
from cindermesh.db.messages import Field
from cindermesh.db.models import Snapshot, SnapshotStatus, Volume, utcnow
from cindermesh.settings import QuotaSettings
from services.volume.domain import backend_of
from services.volume.drivers.base import SnapshotRef
from services.volume.errors import SnapshotNotFound, SnapshotStateChanged

__all__ = [
    "claim",
    "deleting_of_volume",
    "destroy",
    "finish_create",
    "get",
    "ref_of",
    "renew",
    "set_status",
    "take_over",
    "unclaimed",
]


def ref_of(snapshot: Snapshot) -> SnapshotRef:
    return SnapshotRef(
        id=snapshot.id, volume_id=snapshot.volume_id, volume_size_gb=snapshot.volume_size
    )


async def get(db: Database, snapshot_id: str) -> Snapshot:
    async with db.read() as session:
        snapshot = await session.get(Snapshot, snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(snapshot_id)
    return snapshot


async def claim(
    db: Database, snapshot_id: str, status: str, backend_host: str, worker: str, lease: float
) -> Snapshot | None:
    """Takes a snapshot of this backend in ``status`` that nobody else holds (or whose
    holder's lease has lapsed). Raises SnapshotNotFound, or SnapshotStateChanged if it is in
    another state or its volume is placed elsewhere; None if another live worker holds it."""
    now = utcnow()
    async with db.session() as session:
        snapshot = await snapshots.locked(session, snapshot_id)
        if snapshot is None:
            raise SnapshotNotFound(snapshot_id)
        volume = await session.get(Volume, snapshot.volume_id)
        host = volume.host if volume is not None else None
        if snapshot.status != status or host is None or backend_of(host) != backend_host:
            raise SnapshotStateChanged(snapshot_id, status, snapshot.status)
        lapsed = snapshot.lease_expires_at is not None and snapshot.lease_expires_at < now
        if snapshot.worker not in (None, worker) and not lapsed:
            return None
        if not await snapshots.hold(session, snapshot, worker, lease):
            return None
        return await snapshots.locked(session, snapshot_id)


async def take_over(db: Database, backend_host: str, worker: str, lease: float) -> list[Snapshot]:
    """At start: every snapshot of this backend being created or deleted becomes ours."""
    async with db.session() as session:
        return await snapshots.take_over(session, backend_host, worker, lease)


async def unclaimed(db: Database, backend_host: str) -> list[tuple[str, str]]:
    """(id, status) of this backend's snapshots to create or delete that nobody holds."""
    query = select(Snapshot.id, Snapshot.status).where(
        snapshots.of_backend(backend_host),
        col(Snapshot.status).in_(snapshots.WORK_STATUSES),
        snapshots.free_at(utcnow()),
    )
    async with db.read() as session:
        return [(snapshot_id, status) for snapshot_id, status in await session.exec(query)]


async def deleting_of_volume(db: Database, volume_id: str) -> tuple[list[str], int]:
    """The ids of the volume's ``deleting`` snapshots, and how many snapshots it has."""
    query = select(Snapshot.id, Snapshot.status).where(col(Snapshot.volume_id) == volume_id)
    async with db.read() as session:
        rows = list(await session.exec(query))
    return [i for i, status in rows if status == SnapshotStatus.DELETING], len(rows)


async def renew(db: Database, worker: str, snapshot_ids: list[str], lease: float) -> int:
    if not snapshot_ids:
        return 0
    async with db.session() as session:
        return await snapshots.renew(session, worker, snapshot_ids, lease)


async def finish_create(db: Database, snapshot_id: str, worker: str) -> bool:
    async with db.session() as session:
        return await snapshots.finish_create(session, snapshot_id, worker)


async def set_status(
    db: Database,
    snapshot_id: str,
    expected: str,
    status: str,
    worker: str,
    reason: str | None = None,
    message: tuple[Field, Field] | None = None,
) -> bool:
    async with db.session() as session:
        return await snapshots.set_status(
            session, snapshot_id, expected, status, worker, reason, message
        )


async def destroy(db: Database, snapshot_id: str, worker: str, quotas: QuotaSettings) -> bool:
    """Deletes the metadata and the row and gives the quota back, in one transaction; False if
    the row is gone or ``worker`` no longer holds it."""
    async with db.session() as session:
        return await snapshots.destroy(session, snapshot_id, worker, quotas)
