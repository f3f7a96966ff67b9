"""The snapshot repository: every write of a snapshot row, for the api and the volume managers
(the same two rules as ``cindermesh.db.volumes``).

* **A status change is one conditional UPDATE** on the row's current state (its status and,
  where the hand-off needs it, its worker), so two writers racing for one row cannot both win.
* **A snapshot's quota is given back by** :func:`give_back_quota` **only, at most once**: it
  clears ``quota_held`` conditionally and releases ``snapshots`` (and ``gigabytes``, and the
  per-type keys, as :func:`cindermesh.db.quota.snapshot_deltas` counts them) only if that
  UPDATE changed the row. A snapshot that failed to create keeps its quota until it is
  deleted, as in Cinder.

A snapshot's work is done by the manager of its volume's backend (``Volume.host``); the row's
``worker`` and ``lease_expires_at`` say who holds it, as for volumes (``cindermesh.db.work``):

==================  ====================  ===============================================
row                 work                  who takes it
==================  ====================  ===============================================
``creating``        make the image        the volume's manager (CreateSnapshot or its
                                          sweep, or its take-over at start)
``deleting``        remove image and row  the same (DeleteSnapshot, a cascading volume
                                          delete, its sweep or its take-over)
==================  ====================  ===============================================

:func:`create` writes a snapshot row with its quota in the caller's transaction: group
snapshots reuse it for each member.

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.messages import Field, Resource, record_message
from cindermesh.db.models import (
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    Volume,
    VolumeType,
    utcnow,
)
from cindermesh.db.sources import creating_from_snapshot
from cindermesh.db.volumes import on_backend
from cindermesh.db.work import lease_until
from cindermesh.settings import QuotaSettings
from cindermesh.telemetry.request_id import current_request_id

__all__ = [
    "RESET_HOLDER",
    "WORK_STATUSES",
    "NewSnapshot",
    "create",
    "destroy",
    "finish_create",
    "free_at",
    "give_back_quota",
    "go_with_volume",
    "hold",
    "locked",
    "of_backend",
    "renew",
    "reset_status",
    "set_status",
    "start_delete",
    "take_over",
    "transition",
    "update_status",
]

_REASON_MAX = 1024
#: The ``worker`` of a snapshot whose status an admin set (``os-reset_status``): no manager
#: takes it, whatever the status says, until an action hands it over again (a delete).
RESET_HOLDER = "os-reset_status"
#: Statuses with work for a volume manager.
WORK_STATUSES = (SnapshotStatus.CREATING, SnapshotStatus.DELETING)


@dataclass(frozen=True)
class NewSnapshot:
    """What a new snapshot row records besides its volume."""

    project_id: str
    user_id: str
    name: str | None = None
    description: str | None = None
    metadata: Mapping[str, str] | None = None
    group_snapshot_id: str | None = None


def free_at(now: dt.datetime) -> ColumnElement[bool]:
    """Snapshots nobody holds at ``now``."""
    return or_(
        col(Snapshot.worker).is_(None),
        and_(col(Snapshot.lease_expires_at).is_not(None), col(Snapshot.lease_expires_at) < now),
    )


def of_backend(backend_host: str) -> ColumnElement[bool]:
    """Snapshots whose volume is placed on ``backend_host`` (host@backend) or its pools."""
    return col(Snapshot.volume_id).in_(select(Volume.id).where(on_backend(backend_host)))


async def locked(session: AsyncSession, snapshot_id: str) -> Snapshot | None:
    """The row as it is now, locked until the transaction ends."""
    return await session.get(Snapshot, snapshot_id, with_for_update=True, populate_existing=True)


async def transition(
    session: AsyncSession,
    snapshot_id: str,
    statuses: Sequence[str] | None,
    values: Mapping[str, object],
    held_by: str | None = None,
) -> bool:
    """Writes ``values`` if the row is in one of ``statuses`` (None: any) and, if ``held_by``
    is given, held by that worker; whether it was."""
    query = update(Snapshot).where(col(Snapshot.id) == snapshot_id)
    if statuses is not None:
        query = query.where(col(Snapshot.status).in_(statuses))
    if held_by is not None:
        query = query.where(col(Snapshot.worker) == held_by)
    result = await session.exec(query.values(dict(values)))
    return int(result.rowcount) == 1


def _let_go() -> dict[str, object]:
    return {"worker": None, "lease_expires_at": None, "updated_at": utcnow()}


async def _type_name(session: AsyncSession, volume_type_id: str | None) -> str:
    if volume_type_id is None:
        return ""
    volume_type = await session.get(VolumeType, volume_type_id)
    return volume_type.name if volume_type is not None else ""


# The api


async def create(
    session: AsyncSession,
    volume: Volume,
    new: NewSnapshot,
    quotas: QuotaSettings,
    limits: Mapping[str, int] | None = None,
) -> Snapshot:
    """Reserves the snapshot's quota, writes the row (``creating``, ``0%``) and its metadata,
    and commits the quota, in the caller's transaction: all of it or, on QuotaExceeded or any
    failure, nothing (the transaction's rollback)."""
    type_name = await _type_name(session, volume.volume_type_id)
    deltas = quota.snapshot_deltas(volume.size, type_name, quotas)
    await quota.reserve(session, new.project_id, deltas, quotas, durable=False, limits=limits)
    snapshot = Snapshot(
        project_id=new.project_id,
        user_id=new.user_id,
        volume_id=volume.id,
        name=new.name,
        description=new.description,
        volume_size=volume.size,
        volume_type_id=volume.volume_type_id,
        group_snapshot_id=new.group_snapshot_id,
    )
    session.add(snapshot)
    session.add_all(
        SnapshotMetadata(snapshot_id=snapshot.id, key=k, value=v)
        for k, v in (new.metadata or {}).items()
    )
    await quota.commit_deltas(session, new.project_id, deltas)
    await session.flush()
    return snapshot


async def start_delete(
    session: AsyncSession, snapshot_id: str, statuses: Sequence[str] | None
) -> bool:
    """-> ``deleting`` if in one of ``statuses`` (None: any, a force delete), not part of a
    group snapshot and no volume is being created from it; whoever held it lets go, and its
    manager takes it again."""
    query = (
        update(Snapshot)
        .where(
            col(Snapshot.id) == snapshot_id,
            col(Snapshot.group_snapshot_id).is_(None),
            ~creating_from_snapshot(snapshot_id),
        )
        .values(status=SnapshotStatus.DELETING, **_let_go())
    )
    if statuses is not None:
        query = query.where(col(Snapshot.status).in_(statuses))
    result = await session.exec(query)
    return int(result.rowcount) == 1


async def go_with_volume(
    session: AsyncSession, volume_id: str, cascade: bool, forced: bool, project_id: str | None
) -> bool:
    """A volume delete's snapshot rule (Cinder's ``volume.api.delete``), in the transaction
    that marks the volume: without ``cascade`` a volume with snapshots is not deleted; with it
    every snapshot goes ``deleting`` too, if all are ``available`` or ``error`` (any status
    when ``forced``), none is part of a group snapshot and (``project_id``: a non-admin's)
    none is another project's. Whether the volume may go."""
    query = select(Snapshot).where(col(Snapshot.volume_id) == volume_id).with_for_update()
    rows = list(await session.exec(query.execution_options(populate_existing=True)))
    if not rows:
        return True
    if not cascade or any(row.group_snapshot_id is not None for row in rows):
        return False
    deletable = (SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR, SnapshotStatus.DELETING)
    if not forced and any(row.status not in deletable[:2] for row in rows):
        return False
    if project_id is not None and any(row.project_id != project_id for row in rows):
        return False
    for row in rows:
        if not await start_delete(session, row.id, None if forced else deletable):
            return False
    return True


async def reset_status(session: AsyncSession, snapshot_id: str, status: str) -> bool:
    """An admin's ``os-reset_status``: the status, whatever it was, and no manager works on
    it because of it (Cinder removes the snapshot's worker entry): it is held by
    :data:`RESET_HOLDER`, without a lease."""
    values = {"status": status, "worker": RESET_HOLDER, "lease_expires_at": None}
    return await transition(session, snapshot_id, None, {**values, "updated_at": utcnow()})


async def update_status(
    session: AsyncSession, snapshot_id: str, current: str, status: str, progress: str | None
) -> bool:
    """``os-update_snapshot_status``: ``current`` -> ``status`` (and ``progress``); a status
    with no work left lets whoever held it go."""
    values: dict[str, object] = {"status": status, "updated_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    if status not in WORK_STATUSES:
        values |= _let_go()
    return await transition(session, snapshot_id, (current,), values)


# The volume managers


async def hold(session: AsyncSession, snapshot: Snapshot, worker: str, lease: float) -> bool:
    """``worker`` holds ``snapshot`` (in the status and holder it was read with)."""
    query = update(Snapshot).where(
        col(Snapshot.id) == snapshot.id, col(Snapshot.status) == snapshot.status
    )
    holder = col(Snapshot.worker)
    query = query.where(holder.is_(None) if snapshot.worker is None else holder == snapshot.worker)
    result = await session.exec(query.values(worker=worker, lease_expires_at=lease_until(lease)))
    return int(result.rowcount) == 1


async def take_over(
    session: AsyncSession, backend_host: str, worker: str, lease: float
) -> list[Snapshot]:
    """Every snapshot of this backend being created or deleted becomes ``worker``'s (but those
    an admin's status reset holds)."""
    not_reset = or_(col(Snapshot.worker).is_(None), col(Snapshot.worker) != RESET_HOLDER)
    ours = (of_backend(backend_host), col(Snapshot.status).in_(WORK_STATUSES), not_reset)
    await session.exec(
        update(Snapshot).where(*ours).values(worker=worker, lease_expires_at=lease_until(lease))
    )
    query = select(Snapshot).where(*ours, col(Snapshot.worker) == worker)
    return list(await session.exec(query.execution_options(populate_existing=True)))


async def renew(session: AsyncSession, worker: str, snapshot_ids: list[str], lease: float) -> int:
    result = await session.exec(
        update(Snapshot)
        .where(col(Snapshot.worker) == worker, col(Snapshot.id).in_(snapshot_ids))
        .values(lease_expires_at=lease_until(lease))
    )
    return int(result.rowcount)


async def finish_create(session: AsyncSession, snapshot_id: str, worker: str) -> bool:
    """``creating`` (held by ``worker``) -> ``available``, ``100%``, and nobody holds it."""
    values = {"status": SnapshotStatus.AVAILABLE, "progress": "100%", **_let_go()}
    return await transition(session, snapshot_id, (SnapshotStatus.CREATING,), values, worker)


async def set_status(
    session: AsyncSession,
    snapshot_id: str,
    expected: str,
    status: str,
    worker: str,
    reason: str | None = None,
    message: tuple[Field, Field] | None = None,
) -> bool:
    """``expected`` (held by ``worker``) -> ``status`` (with the reason, if any), and nobody
    holds it; ``message``: Cinder's user message (action, detail) for the failure, recorded
    in the same transaction."""
    values: dict[str, object] = {"status": status, **_let_go()}
    if reason is not None:
        values["error_reason"] = reason[:_REASON_MAX]
    if not await transition(session, snapshot_id, (expected,), values, worker):
        return False
    if message is not None:
        row = await session.get(Snapshot, snapshot_id)
        assert row is not None
        action, detail = message
        record_message(
            session,
            project_id=row.project_id,
            action=action,
            detail=detail,
            resource_uuid=snapshot_id,
            resource_type=Resource.VOLUME_SNAPSHOT,
            request_id=current_request_id() or None,
        )
    return True


async def give_back_quota(session: AsyncSession, snapshot_id: str, quotas: QuotaSettings) -> bool:
    """Gives the snapshot's quota back if it still holds it; False if it did not. The one
    place a snapshot's quota is released (counted as Cinder does, with the configuration's
    ``no_snapshot_gb_quota``)."""
    cleared = update(Snapshot).where(
        col(Snapshot.id) == snapshot_id, col(Snapshot.quota_held).is_(True)
    )
    result = await session.exec(cleared.values(quota_held=False))
    if int(result.rowcount) != 1:
        return False
    row = await session.get(Snapshot, snapshot_id, populate_existing=True)
    assert row is not None
    type_name = await _type_name(session, row.volume_type_id)
    deltas = quota.snapshot_deltas(row.volume_size, type_name, quotas)
    await quota.release(session, row.project_id, deltas)
    return True


async def destroy(
    session: AsyncSession, snapshot_id: str, worker: str | None, quotas: QuotaSettings
) -> bool:
    """Gives the quota back and deletes the metadata and the row, if the row is ``deleting``
    (and held by ``worker``, if given); whether it was."""
    if not await transition(
        session, snapshot_id, (SnapshotStatus.DELETING,), {"updated_at": utcnow()}, worker
    ):
        return False
    await give_back_quota(session, snapshot_id, quotas)
    await session.exec(
        delete(SnapshotMetadata).where(col(SnapshotMetadata.snapshot_id) == snapshot_id)
    )
    await session.exec(delete(Snapshot).where(col(Snapshot.id) == snapshot_id))
    return True
