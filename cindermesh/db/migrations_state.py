"""The durable record of a volume's migration (Cinder's generic migration of a retype with
``migration_policy=on-demand``), on the volume row, each change one conditional UPDATE as in
``cindermesh.db.volumes``:

    available --api start()--> retyping, migration_status "starting",
        migration_host = the destination pool, migration_type_id = the new type,
        the new type's per-type quota reserved (pending_reservations)
    --destination manager claim()--> migration_status "migrating", held by that manager
    --complete()--> previous status on the destination host with the new type,
        migration_status "success", the reservations committed and the old type's per-type
        quota released (the volume's ``volumes``/``gigabytes`` never change)
    or --fail()--> previous status where it was, with its old type,
        migration_status "error", the reservations rolled back

The row is the record: the destination manager that dies mid-migration ends it with
:func:`fail` when it starts again (its recovery), the source image untouched until the row
is placed on the destination. An admin's ``os-reset_status`` rolls the reservations back as
for any action.

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.models import Volume, VolumeStatus, VolumeType, utcnow
from cindermesh.db.volume_actions import not_migrating
from cindermesh.db.volume_types import type_extra_specs
from cindermesh.db.work import join_hosts, lease_until, split_hosts
from cindermesh.settings import QuotaSettings

__all__ = [
    "ERROR",
    "MIGRATING",
    "STARTING",
    "SUCCESS",
    "claim",
    "complete",
    "fail",
    "migrating_to",
    "start",
]

STARTING = "starting"
MIGRATING = "migrating"
SUCCESS = "success"
ERROR = "error"

_IN_PROGRESS = (STARTING, MIGRATING)


def _to_backend(backend_host: str) -> ColumnElement[bool]:
    column = col(Volume.migration_host)
    return or_(column == backend_host, column.startswith(f"{backend_host}#"))


def _migrating() -> list[ColumnElement[bool]]:
    return [
        col(Volume.status) == VolumeStatus.RETYPING,
        col(Volume.migration_status).in_(_IN_PROGRESS),
        col(Volume.migration_host).is_not(None),
    ]


async def _write(
    session: AsyncSession, volume_id: str, where: Sequence[ColumnElement[bool]], **values: object
) -> bool:
    query = update(Volume).where(col(Volume.id) == volume_id, *where)
    result = await session.exec(query.values(updated_at=utcnow(), **values))
    return int(result.rowcount) == 1


def _type_deltas(size: int, type_name: str) -> dict[str, int]:
    every = quota.volume_deltas(size, type_name)
    return {key: every[key] for key in (f"volumes_{type_name}", f"gigabytes_{type_name}")}


async def _type_name(session: AsyncSession, type_id: str | None) -> str:
    if type_id is None:
        return ""
    found = (await session.exec(select(VolumeType.name).where(VolumeType.id == type_id))).first()
    return found or ""


async def start(
    session: AsyncSession,
    volume: Volume,
    destination: str,
    new_type: VolumeType,
    quotas: QuotaSettings,
) -> bool:
    """``volume`` (``available``, not migrating, in no group, of the type it was read with)
    -> ``retyping`` to ``destination`` (host@backend#pool) and ``new_type``, the new type's
    per-type quota reserved (QuotaExceeded, nothing changed, if it is short); False if the
    volume is no longer so."""
    reservations: list[str] = []
    if volume.quota_held:
        gained = _type_deltas(volume.size, new_type.name)
        reservations = await quota.reserve(session, volume.project_id, gained, quotas)
    expected = [
        col(Volume.status) == VolumeStatus.AVAILABLE,
        not_migrating(),
        col(Volume.group_id).is_(None),
        col(Volume.volume_type_id) == volume.volume_type_id,
        col(Volume.host) == volume.host,
        col(Volume.pending_reservations) == "",
    ]
    started = await _write(
        session,
        volume.id,
        expected,
        status=VolumeStatus.RETYPING,
        previous_status=volume.status,
        migration_status=STARTING,
        migration_host=destination,
        migration_type_id=new_type.id,
        pending_reservations=join_hosts(reservations),
        worker=None,
        lease_expires_at=None,
    )
    if not started and reservations:
        await quota.rollback(session, reservations)
    return started


async def claim(
    session: AsyncSession, volume_id: str, backend_host: str, worker: str, lease: float
) -> Volume | None:
    """The destination manager (``backend_host``, host@backend) takes the migration of
    ``volume_id`` to it: ``migrating``, held by ``worker``; None if the volume is not
    migrating here or another live worker holds it."""
    now = utcnow()
    free = or_(
        col(Volume.worker).is_(None),
        col(Volume.worker) == worker,
        col(Volume.lease_expires_at).is_(None),
        col(Volume.lease_expires_at) < now,
    )
    taken = await _write(
        session,
        volume_id,
        [*_migrating(), _to_backend(backend_host), free],
        migration_status=MIGRATING,
        worker=worker,
        lease_expires_at=lease_until(lease),
    )
    if not taken:
        return None
    return await session.get(Volume, volume_id, populate_existing=True)


async def migrating_to(session: AsyncSession, backend_host: str) -> list[Volume]:
    """The volumes being migrated to ``backend_host`` (host@backend)."""
    query = select(Volume).where(*_migrating(), _to_backend(backend_host))
    return list(await session.exec(query))


async def complete(
    session: AsyncSession, volume_id: str, worker: str, service_uuid: str | None
) -> bool:
    """The migration held by ``worker`` ends well (Cinder's ``migrate_volume_completion``
    and the retype's last update, in one UPDATE): the row on its destination with its new
    type and ``multiattach``, its previous status, ``migration_status`` ``success``; the new
    type's reservations committed, the old type's per-type quota released. False if
    ``worker`` no longer holds it (nothing changed)."""
    volume = await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)
    if (
        volume is None
        or volume.status != VolumeStatus.RETYPING
        or volume.migration_status != MIGRATING
        or volume.worker != worker
        or volume.migration_host is None
        or volume.migration_type_id is None
    ):
        return False
    old_type, size, project = volume.volume_type_id, volume.size, volume.project_id
    pending = split_hosts(volume.pending_reservations)
    specs = await type_extra_specs(session, volume.migration_type_id)
    held = [
        *_migrating(),
        col(Volume.worker) == worker,
        col(Volume.pending_reservations) == volume.pending_reservations,
    ]
    done = await _write(
        session,
        volume_id,
        held,
        status=volume.previous_status or VolumeStatus.AVAILABLE,
        host=volume.migration_host,
        service_uuid=service_uuid,
        volume_type_id=volume.migration_type_id,
        multiattach=specs.get("multiattach") == "<is> True",
        migration_status=SUCCESS,
        migration_host=None,
        migration_type_id=None,
        pending_reservations="",
        worker=None,
        lease_expires_at=None,
    )
    if not done:
        return False
    if pending:
        await quota.commit(session, pending)
        await quota.release(
            session, project, _type_deltas(size, await _type_name(session, old_type))
        )
    return True


async def fail(session: AsyncSession, volume_id: str, worker: str | None) -> bool:
    """The migration ends badly: the volume back to its previous status where it was, with
    its old type, ``migration_status`` ``error``, the reservations rolled back. ``worker``:
    only if it still holds it (None: whoever holds it, for the api and a recovery). False if
    the volume is not migrating (or ``worker`` no longer holds it)."""
    volume = await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)
    if volume is None or volume.status != VolumeStatus.RETYPING:
        return False
    if volume.migration_status not in _IN_PROGRESS:
        return False
    if worker is not None and volume.worker != worker:
        return False
    pending = split_hosts(volume.pending_reservations)
    where = [*_migrating(), col(Volume.pending_reservations) == volume.pending_reservations]
    if worker is not None:
        where.append(col(Volume.worker) == worker)
    done = await _write(
        session,
        volume_id,
        where,
        status=volume.previous_status or VolumeStatus.AVAILABLE,
        migration_status=ERROR,
        migration_host=None,
        migration_type_id=None,
        pending_reservations="",
        worker=None,
        lease_expires_at=None,
    )
    if done and pending:
        await quota.rollback(session, pending)
    return done
