"""The writes of a volume's actions (``POST /volumes/{id}/action``), for the api and the
volume managers: each status change one conditional UPDATE on the state it expects, as in
``cindermesh.db.volumes`` (whose rules hold here too).

An action's quota (an extend's increase) is reserved by the api in the transaction that
starts the action; the reservations are written on the row (``pending_reservations``) and
settled once, by the UPDATE that ends the action (committed when it succeeds, rolled back when
it fails or an admin resets the status): that UPDATE clears them, so no second end finds any.

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.messages import Action, Detail, Field, record_message
from cindermesh.db.models import (
    Snapshot,
    SnapshotStatus,
    Volume,
    VolumeAdminMetadata,
    VolumeStatus,
    VolumeType,
    utcnow,
)
from cindermesh.db.work import join_hosts, split_hosts
from cindermesh.settings import QuotaSettings
from cindermesh.telemetry.request_id import current_request_id

__all__ = [
    "AVAILABLE_MIGRATION_STATUSES",
    "admin_metadata",
    "change_type",
    "end_extend",
    "end_revert",
    "latest_snapshot",
    "not_migrating",
    "reset_status",
    "restoring_snapshot",
    "retypable",
    "set_admin_metadata",
    "set_bootable",
    "set_multiattach",
    "start_extend",
    "start_revert",
    "status_is",
    "touch",
]

#: Cinder's ``AVAILABLE_MIGRATION_STATUS``: the volume is not being migrated.
AVAILABLE_MIGRATION_STATUSES: tuple[str | None, ...] = (None, "deleting", "error", "success")


def not_migrating() -> ColumnElement[bool]:
    """The volume is not being migrated (its ``migration_status`` is one of those)."""
    column = col(Volume.migration_status)
    named = [s for s in AVAILABLE_MIGRATION_STATUSES if s is not None]
    return column.is_(None) | column.in_(named)


async def _write(
    session: AsyncSession, volume_id: str, where: Sequence[ColumnElement[bool]], **values: object
) -> bool:
    """``values`` on the row if it matches ``where``; whether it did."""
    query = update(Volume).where(col(Volume.id) == volume_id, *where)
    result = await session.exec(query.values(updated_at=utcnow(), **values))
    return int(result.rowcount) == 1


def _held(status: str, worker: str) -> list[ColumnElement[bool]]:
    return [col(Volume.status) == status, col(Volume.worker) == worker]


def _let_go() -> dict[str, object]:
    return {"worker": None, "lease_expires_at": None}


def status_is(status: str) -> ColumnElement[bool]:
    """The row's status is ``status`` (for :func:`touch`)."""
    return col(Volume.status) == status


async def touch(session: AsyncSession, volume_id: str, *where: ColumnElement[bool]) -> bool:
    """Marks the row updated if it matches ``where`` (an action that changes no column of it,
    conditional on its state); whether it did."""
    return await _write(session, volume_id, where)


# Extend


async def start_extend(
    session: AsyncSession, volume: Volume, new_size: int, reservations: Sequence[str]
) -> bool:
    """``volume`` (in the status and size it was read in) -> ``extending`` to ``new_size``,
    holding ``reservations``; False if it changed since it was read."""
    expected = [
        col(Volume.status) == volume.status,
        col(Volume.size) == volume.size,
        col(Volume.extend_to_gb).is_(None),
    ]
    return await _write(
        session,
        volume.id,
        expected,
        status=VolumeStatus.EXTENDING,
        previous_status=volume.status,
        extend_to_gb=new_size,
        pending_reservations=join_hosts(reservations),
        **_let_go(),
    )


async def _settle_pending(session: AsyncSession, ids: Sequence[str], committed: bool) -> None:
    """Commits or rolls back the reservations an action held (read before the UPDATE that
    cleared them: the session synchronises the row it has with that UPDATE)."""
    if not ids:
        return
    if committed:
        await quota.commit(session, ids)
    else:
        await quota.rollback(session, ids)


async def end_extend(session: AsyncSession, volume_id: str, worker: str, succeeded: bool) -> bool:
    """``extending`` (held by ``worker``) -> its previous status with the new size and the
    increase's quota committed, or (not ``succeeded``) -> ``error_extending`` with it rolled
    back and Cinder's message recorded (extend volume: the driver failed to extend it); nobody
    holds it then. False if ``worker`` no longer holds it."""
    volume = await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)
    if volume is None or volume.status != VolumeStatus.EXTENDING or volume.worker != worker:
        return False
    pending = split_hosts(volume.pending_reservations)
    values: dict[str, object] = {"extend_to_gb": None, "pending_reservations": "", **_let_go()}
    if succeeded:
        assert volume.extend_to_gb is not None
        values["status"] = volume.previous_status or VolumeStatus.AVAILABLE
        values["size"] = volume.extend_to_gb
    else:
        values["status"] = VolumeStatus.ERROR_EXTENDING
    if not await _write(session, volume_id, _held(VolumeStatus.EXTENDING, worker), **values):
        return False
    await _settle_pending(session, pending, committed=succeeded)
    if not succeeded:
        _record(session, volume, Action.EXTEND_VOLUME, Detail.DRIVER_FAILED_EXTEND)
    return True


def _record(session: AsyncSession, volume: Volume, action: Field, detail: Field) -> None:
    record_message(
        session,
        project_id=volume.project_id,
        action=action,
        detail=detail,
        resource_uuid=volume.id,
        request_id=current_request_id() or None,
    )


# Admin actions


async def reset_status(session: AsyncSession, volume: Volume, values: dict[str, object]) -> bool:
    """Writes an admin's ``values`` (status, attach_status, migration_status) whatever the
    volume's state (Cinder's ``os-reset_status``); whoever held it lets go, and the quota of
    an action in progress is given back (that action can no longer end). False if the row
    changed since it was read."""
    expected = [
        col(Volume.status) == volume.status,
        col(Volume.pending_reservations) == volume.pending_reservations,
    ]
    pending = split_hosts(volume.pending_reservations)
    cleared = {"extend_to_gb": None, "pending_reservations": "", **_let_go()}
    if not await _write(session, volume.id, expected, **values, **cleared):
        return False
    await _settle_pending(session, pending, committed=False)
    return True


async def set_bootable(session: AsyncSession, volume_id: str, bootable: bool) -> bool:
    """Cinder's update of ``bootable``: refused (False) during maintenance."""
    where = [col(Volume.status) != VolumeStatus.MAINTENANCE]
    return await _write(session, volume_id, where, bootable=bootable)


async def admin_metadata(
    session: AsyncSession, volume_ids: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Each volume's admin metadata."""
    found: dict[str, dict[str, str]] = {volume_id: {} for volume_id in volume_ids}
    query = select(VolumeAdminMetadata).where(col(VolumeAdminMetadata.volume_id).in_(volume_ids))
    for row in await session.exec(query):
        found[row.volume_id][row.key] = row.value
    return found


async def set_admin_metadata(session: AsyncSession, volume_id: str, key: str, value: str) -> None:
    """Sets one admin metadata key (after the conditional write that allowed it)."""
    await session.exec(
        delete(VolumeAdminMetadata).where(
            col(VolumeAdminMetadata.volume_id) == volume_id, col(VolumeAdminMetadata.key) == key
        )
    )
    session.add(VolumeAdminMetadata(volume_id=volume_id, key=key, value=value))


# Retype


_RETYPABLE = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE)


def retypable(volume: Volume, new_type_id: str) -> bool:
    """Whether :func:`change_type` would take ``volume`` as it is read: available or in-use,
    not migrating, in no group, of another type."""
    return (
        volume.status in _RETYPABLE
        and volume.migration_status in AVAILABLE_MIGRATION_STATUSES
        and volume.group_id is None
        and volume.volume_type_id != new_type_id
    )


async def set_multiattach(session: AsyncSession, volume_id: str, multiattach: bool) -> None:
    """A retype's new ``multiattach`` (in the retype's transaction)."""
    await _write(session, volume_id, [], multiattach=multiattach)


async def change_type(
    session: AsyncSession, volume: Volume, new_type: VolumeType, quotas: QuotaSettings
) -> bool:
    """``volume`` (available or in-use, not migrating, in no group, of the type it was read
    with) takes ``new_type``, and its per-type quota moves from the old type to the new one
    (QuotaExceeded, nothing changed, if the new type's quota is short). False if the volume
    is not in such a state."""
    old_type_id = volume.volume_type_id  # before the UPDATE, which the session applies to it
    expected = [
        col(Volume.status).in_(_RETYPABLE),
        not_migrating(),
        col(Volume.group_id).is_(None),
        col(Volume.volume_type_id) == old_type_id,
        col(Volume.volume_type_id) != new_type.id,
    ]
    if not await _write(session, volume.id, expected, volume_type_id=new_type.id):
        return False
    if not volume.quota_held:
        return True
    old_name = (
        await session.exec(select(VolumeType.name).where(VolumeType.id == old_type_id))
    ).first() or ""
    gained = _type_deltas(volume.size, new_type.name)
    await quota.reserve(session, volume.project_id, gained, quotas, durable=False)
    await quota.commit_deltas(session, volume.project_id, gained)
    await quota.release(session, volume.project_id, _type_deltas(volume.size, old_name))
    return True


def _type_deltas(size: int, type_name: str) -> dict[str, int]:
    """The per-type keys of one volume (Cinder's ``reserve_vol_type_only``)."""
    every = quota.volume_deltas(size, type_name)
    return {key: every[key] for key in (f"volumes_{type_name}", f"gigabytes_{type_name}")}


# Revert


async def start_revert(session: AsyncSession, volume: Volume, snapshot: Snapshot) -> str | None:
    """``available`` -> ``reverting`` and the snapshot ``available`` -> ``restoring``; None
    if both were so, else which was not (``"volume"`` or ``"snapshot"``), nothing changed."""
    available = [col(Volume.status) == VolumeStatus.AVAILABLE]
    reverting = {"status": VolumeStatus.REVERTING, "previous_status": VolumeStatus.AVAILABLE}
    if not await _write(session, volume.id, available, **reverting, **_let_go()):
        return "volume"
    restoring = await session.exec(
        update(Snapshot)
        .where(col(Snapshot.id) == snapshot.id, col(Snapshot.status) == SnapshotStatus.AVAILABLE)
        .values(status=SnapshotStatus.RESTORING, updated_at=utcnow())
    )
    if int(restoring.rowcount) != 1:
        await _write(
            session,
            volume.id,
            [col(Volume.status) == VolumeStatus.REVERTING],
            status=VolumeStatus.AVAILABLE,
        )
        return "snapshot"
    return None


async def restoring_snapshot(session: AsyncSession, volume_id: str) -> Snapshot | None:
    """The snapshot a revert of the volume in progress rolls it back to."""
    query = select(Snapshot).where(
        Snapshot.volume_id == volume_id, Snapshot.status == SnapshotStatus.RESTORING
    )
    return (await session.exec(query.order_by(col(Snapshot.created_at).desc()))).first()


async def end_revert(
    session: AsyncSession, volume_id: str, snapshot_id: str, worker: str, succeeded: bool
) -> bool:
    """``reverting`` (held by ``worker``) -> ``available`` (``error`` if not ``succeeded``,
    as Cinder), and the snapshot ``restoring`` -> ``available`` either way; False if
    ``worker`` no longer holds the volume."""
    status = VolumeStatus.AVAILABLE if succeeded else VolumeStatus.ERROR
    held = _held(VolumeStatus.REVERTING, worker)
    if not await _write(session, volume_id, held, status=status, **_let_go()):
        return False
    await session.exec(
        update(Snapshot)
        .where(col(Snapshot.id) == snapshot_id, col(Snapshot.status) == SnapshotStatus.RESTORING)
        .values(status=SnapshotStatus.AVAILABLE, updated_at=utcnow())
    )
    return True


async def latest_snapshot(session: AsyncSession, volume_id: str) -> Snapshot | None:
    """The volume's newest snapshot (Cinder's ``get_latest_snapshot``)."""
    query = select(Snapshot).where(Snapshot.volume_id == volume_id)
    return (await session.exec(query.order_by(col(Snapshot.created_at).desc()))).first()
