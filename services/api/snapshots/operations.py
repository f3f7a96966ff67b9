"""The api's snapshot operations: create, show, list, update, delete and the actions (their
bodies are checked by ``body``; the row writes are ``cindermesh.db.snapshots``').

A create is accepted when the transaction that reserves its quota, writes its row and commits
the quota ends; the snapshot's volume's manager is then asked to make it (the fast path: a
manager that is down or slow finds it in its sweep). A delete likewise marks the row and asks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota, snapshots, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    Volume,
    VolumeStatus,
    utcnow,
)
from cindermesh.errors import (
    BackendUnavailable,
    InvalidInput,
    InvalidSnapshot,
    InvalidVolume,
    NotFound,
)
from cindermesh.settings import QuotaSettings
from services.api.clients import VolumeManagerClients
from services.api.edge.request_context import RequestContext
from services.api.snapshots.body import SnapshotChange, SnapshotCreateInput, StatusUpdate
from services.api.snapshots.listing import SNAPSHOTS
from services.api.snapshots.views import SnapshotRecord
from services.api.volumes.listing import ListPage, ListQuery, list_page
from services.api.volumes.lookups import find_volume, manager_address

__all__ = ["SnapshotOperations", "check_volume", "find_snapshot", "snapshot_records"]

log = logging.getLogger(__name__)

#: A manager client method: ``(address, snapshot_id)``.
_Call = Callable[[str, str], Awaitable[None]]

#: Cinder's ``AVAILABLE_MIGRATION_STATUS``: a volume in any other is migrating.
_NOT_MIGRATING = (None, "deleting", "error", "success")
_DELETABLE = (SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR)
#: ``os-update_snapshot_status``'s transitions (Cinder's ``status_map``).
_STATUS_MAP = {
    SnapshotStatus.CREATING: (
        SnapshotStatus.CREATING,
        SnapshotStatus.AVAILABLE,
        SnapshotStatus.ERROR,
    ),
    SnapshotStatus.DELETING: (SnapshotStatus.DELETING, SnapshotStatus.ERROR_DELETING),
}


async def find_snapshot(session: AsyncSession, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    """The snapshot if the caller may see it (its project's, or any for an admin)."""
    query = select(Snapshot).where(col(Snapshot.id) == snapshot_id)
    if not ctx.caller.is_admin:
        query = query.where(col(Snapshot.project_id) == ctx.project_id)
    snapshot = (await session.exec(query)).first()
    if snapshot is None:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    return snapshot


async def snapshot_records(session: AsyncSession, rows: Sequence[Snapshot]) -> list[SnapshotRecord]:
    """Snapshots with their metadata, in one more query."""
    metadata: dict[str, dict[str, str]] = {row.id: {} for row in rows}
    query = select(SnapshotMetadata).where(col(SnapshotMetadata.snapshot_id).in_(list(metadata)))
    for item in await session.exec(query):
        metadata[item.snapshot_id][item.key] = item.value
    return [SnapshotRecord(row, metadata[row.id]) for row in rows]


def check_volume(volume: Volume, allow_in_use: bool) -> None:
    """Cinder's ``_create_snapshot_in_db_validate`` and status rule, with its messages."""
    if volume.host is None:
        raise InvalidVolume(
            "The snapshot cannot be created because volume has not been scheduled to any host."
        )
    if volume.status == VolumeStatus.MAINTENANCE:
        raise InvalidVolume(
            "The snapshot cannot be created when the volume is in maintenance mode."
        )
    if volume.migration_status not in _NOT_MIGRATING:
        raise InvalidVolume("Snapshot cannot be created while volume is migrating.")
    if volume.status == VolumeStatus.ERROR:
        raise InvalidVolume("The snapshot cannot be created when the volume is in error status.")
    if volume.status.startswith("replica_"):
        raise InvalidVolume("Snapshot of secondary replica is not allowed.")
    valid = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE) if allow_in_use else ("available",)
    if volume.status not in valid:
        raise InvalidVolume(
            f"Volume {volume.id} status must be {', '.join(valid)}, but current status is: "
            f"{volume.status}."
        )


async def _manager_address(session: AsyncSession, volume_id: str) -> str | None:
    """The address of the manager of the volume's backend, if it is registered."""
    volume = await session.get(Volume, volume_id)
    return await manager_address(session, volume.host if volume is not None else None)


class SnapshotOperations:
    def __init__(self, db: Database, quotas: QuotaSettings, managers: VolumeManagerClients) -> None:
        self._db = db
        self._quotas = quotas
        self._managers = managers

    async def create(self, ctx: RequestContext, request: SnapshotCreateInput) -> SnapshotRecord:
        """Cinder's ``create_snapshot``: the volume must be ``available`` (or ``in-use`` if
        allowed); 413 over the ``snapshots`` or ``gigabytes`` quota (and their per-type keys)."""
        async with self._db.session() as session:
            found = await find_volume(session, ctx, str(request.volume_id))
            log.info("Create snapshot from volume %s", found.id)
            # Locked, so that the volume cannot start a delete while its snapshot is written.
            volume = await volumes.locked(session, found.id)
            if volume is None:
                raise NotFound(f"Volume {found.id} could not be found.")
            check_volume(volume, request.allow_in_use)
            limits = await quota.limits_for(session, ctx.project_id, self._quotas)
            new = snapshots.NewSnapshot(
                project_id=ctx.project_id,
                user_id=ctx.caller.user_id,
                name=request.name,
                description=request.description,
                metadata=request.metadata,
            )
            snapshot = await snapshots.create(session, volume, new, self._quotas, limits)
            record = SnapshotRecord(snapshot, dict(request.metadata))
            address = await _manager_address(session, volume.id)
        await self._hand_over(address, snapshot.id, self._managers.create_snapshot)
        log.info("Snapshot create request issued successfully. snapshot=%s", snapshot.id)
        return record

    async def _hand_over(self, address: str | None, snapshot_id: str, call: _Call) -> None:
        if address is None:
            log.warning("snapshot %s: its volume's backend is not registered", snapshot_id)
            return
        try:
            await call(address, snapshot_id)
        except BackendUnavailable:
            # The row is the record: the manager's sweep takes it when it is back.
            log.warning(
                "snapshot %s: manager %s unreachable; left to its sweep", snapshot_id, address
            )

    async def get(self, ctx: RequestContext, snapshot_id: str) -> SnapshotRecord:
        async with self._db.read() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            return (await snapshot_records(session, [snapshot]))[0]

    async def list(
        self, ctx: RequestContext, query: ListQuery
    ) -> tuple[ListPage[Snapshot], list[SnapshotRecord]]:
        async with self._db.read() as session:
            page = await list_page(session, ctx, query, SNAPSHOTS)
            return page, await snapshot_records(session, page.rows)

    async def update(
        self, ctx: RequestContext, snapshot_id: str, change: SnapshotChange
    ) -> SnapshotRecord:
        async with self._db.session() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            if change.set_name:
                snapshot.name = change.name
            if change.set_description:
                snapshot.description = change.description
            snapshot.updated_at = utcnow()
            session.add(snapshot)
            await session.flush()
            return (await snapshot_records(session, [snapshot]))[0]

    async def delete(self, ctx: RequestContext, snapshot_id: str, forced: bool) -> None:
        """Cinder's ``delete_snapshot``: ``available`` or ``error`` (any status when
        ``forced``), not part of a group snapshot; then its manager removes it."""
        log.info("Delete snapshot with id: %s", snapshot_id)
        async with self._db.session() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            if not await snapshots.start_delete(
                session, snapshot.id, None if forced else _DELETABLE
            ):
                status = "" if forced else f"status must be {' or '.join(_DELETABLE)} and"
                raise InvalidSnapshot(f"Snapshot {status} must not be part of a group.")
            address = await _manager_address(session, snapshot.volume_id)
        await self._hand_over(address, snapshot_id, self._managers.delete_snapshot)
        log.info("Snapshot delete request issued successfully. snapshot=%s", snapshot_id)

    async def reset_status(self, ctx: RequestContext, snapshot_id: str, status: str) -> None:
        log.debug("Updating snapshot '%s' with '{'status': '%s'}'", snapshot_id, status)
        async with self._db.session() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            await snapshots.reset_status(session, snapshot.id, status)

    async def update_status(
        self, ctx: RequestContext, snapshot_id: str, update: StatusUpdate
    ) -> None:
        """Cinder's ``os-update_snapshot_status``: only ``_STATUS_MAP``'s transitions."""
        async with self._db.session() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            current = snapshot.status
            allowed = _STATUS_MAP.get(current)
            if allowed is None:
                raise InvalidInput(
                    f"Snapshot status {current} not allowed for update_snapshot_status"
                )
            if update.status not in allowed:
                raise InvalidInput(
                    f"Provided snapshot status {update.status} not allowed for snapshot with "
                    f"status {current}."
                )
            log.info(
                "Updating snapshot %s with info %s", snapshot_id, (update.status, update.progress)
            )
            if not await snapshots.update_status(
                session, snapshot.id, current, update.status, update.progress
            ):
                raise InvalidInput(
                    f"Snapshot status {current} not allowed for update_snapshot_status"
                )
