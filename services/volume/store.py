"""The database reads and writes of the volume manager, one transaction per function.

A manager works on a volume only while it holds it: ``worker`` on the row is its instance id,
taken by a conditional write (:func:`claim`, :func:`take_over`) and kept by renewing the
lease (:func:`renew`); every later write checks it still holds the row, so a manager that lost
a volume (its lease lapsed and a scheduler placed the volume elsewhere, or the api marked it
for deletion) changes nothing. The protocol is in ``cindermesh.db.work``.

Quota is given back at most once per volume: only while ``quota_held`` is set, which the same
transaction clears (the scheduler follows the same rule).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeMetadata, VolumeStatus, VolumeType, utcnow
from cindermesh.db.work import lease_until, unplace
from services.volume.domain import RetryState, backend_of
from services.volume.errors import VolumeNotFound, VolumeStateChanged

__all__ = [
    "claim",
    "destroy_volume",
    "get_volume",
    "hand_back",
    "mark_available",
    "mark_error",
    "on_backend",
    "renew",
    "set_status",
    "take_over",
    "unclaimed",
    "volume_hosts",
]

_ERROR_REASON_MAX = 1024
_WORK_STATUSES = (VolumeStatus.CREATING, VolumeStatus.DELETING)


def on_backend(backend_host: str) -> ColumnElement[bool]:
    """Rows placed on ``backend_host`` (host@backend) or one of its pools."""
    return or_(col(Volume.host) == backend_host, col(Volume.host).startswith(f"{backend_host}#"))


async def _locked(session: AsyncSession, volume_id: str) -> Volume | None:
    return await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)


async def _held(session: AsyncSession, volume_id: str, worker: str, status: str) -> Volume | None:
    """The row, locked, if ``worker`` holds it in ``status``."""
    volume = await _locked(session, volume_id)
    if volume is None or volume.worker != worker or volume.status != status:
        return None
    return volume


def _release(volume: Volume) -> None:
    volume.worker = None
    volume.lease_expires_at = None
    volume.updated_at = utcnow()


async def _release_quota(session: AsyncSession, volume: Volume) -> None:
    if not volume.quota_held:
        return
    type_name = (
        await session.exec(select(VolumeType.name).where(VolumeType.id == volume.volume_type_id))
    ).first() or ""
    await quota.release(session, volume.project_id, quota.volume_deltas(volume.size, type_name))
    volume.quota_held = False


async def get_volume(db: Database, volume_id: str) -> Volume:
    async with db.read() as session:
        volume = await session.get(Volume, volume_id)
    if volume is None:
        raise VolumeNotFound(volume_id)
    return volume


async def claim(
    db: Database,
    volume_id: str,
    status: str,
    backend_host: str,
    worker: str,
    lease: float,
    host: str | None = None,
) -> Volume | None:
    """Takes a volume of this backend in ``status`` that nobody else holds (or whose holder's
    lease has lapsed), and (if given) placed on ``host`` exactly. Raises VolumeNotFound, or
    VolumeStateChanged if the volume is in another state or placed elsewhere; None if another
    live worker holds it."""
    now = utcnow()
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None:
            raise VolumeNotFound(volume_id)
        placed_here = volume.host is not None and backend_of(volume.host) == backend_host
        if volume.status != status or not placed_here or host not in (None, volume.host):
            raise VolumeStateChanged(volume_id, status, volume.status)
        held = volume.worker not in (None, worker) and (
            volume.lease_expires_at is not None and volume.lease_expires_at >= now
        )
        if held:
            return None
        volume.worker = worker
        volume.lease_expires_at = lease_until(lease)
        return volume


async def take_over(db: Database, backend_host: str, worker: str, lease: float) -> list[Volume]:
    """At start: every volume of this backend being created or deleted becomes ours, whoever
    held it (one manager serves a backend, so its holder was a previous run of this one)."""
    ours = on_backend(backend_host)
    async with db.session() as session:
        query = select(Volume).where(ours, col(Volume.status).in_(_WORK_STATUSES))
        volumes = list(await session.exec(query.with_for_update()))
        for volume in volumes:
            volume.worker = worker
            volume.lease_expires_at = lease_until(lease)
        return volumes


async def unclaimed(db: Database, backend_host: str) -> list[tuple[str, str]]:
    """(id, status) of this backend's volumes to create or delete that nobody holds: hand-offs
    whose RPC never arrived, and deletes whose manager was down."""
    now = utcnow()
    lapsed = col(Volume.lease_expires_at).is_not(None) & (col(Volume.lease_expires_at) < now)
    free = col(Volume.worker).is_(None) | lapsed
    query = select(Volume.id, Volume.status).where(
        on_backend(backend_host), col(Volume.status).in_(_WORK_STATUSES), free
    )
    async with db.read() as session:
        return [(volume_id, status) for volume_id, status in await session.exec(query)]


async def volume_hosts(db: Database, volume_ids: list[str]) -> dict[str, str | None]:
    """The host of each of these volumes that has a row."""
    async with db.read() as session:
        query = select(Volume.id, Volume.host).where(col(Volume.id).in_(volume_ids))
        return {volume_id: host for volume_id, host in await session.exec(query)}


async def renew(db: Database, worker: str, volume_ids: list[str], lease: float) -> int:
    """Extends the lease of the volumes ``worker`` holds and works on; returns how many (a
    volume held but no longer worked on is left to lapse, so that someone takes it)."""
    if not volume_ids:
        return 0
    async with db.session() as session:
        result = await session.exec(
            update(Volume)
            .where(col(Volume.worker) == worker, col(Volume.id).in_(volume_ids))
            .values(lease_expires_at=lease_until(lease))
        )
        return int(result.rowcount)


async def mark_available(
    db: Database, volume_id: str, worker: str, service_uuid: str | None
) -> Volume:
    """``creating`` -> ``available`` with ``launched_at``, and the volume is released; raises
    VolumeNotFound, or VolumeStateChanged if ``worker`` no longer holds it."""
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None:
            raise VolumeNotFound(volume_id)
        if volume.status != VolumeStatus.CREATING or volume.worker != worker:
            raise VolumeStateChanged(volume_id, VolumeStatus.CREATING, volume.status)
        now = utcnow()
        volume.status = VolumeStatus.AVAILABLE
        volume.launched_at = now
        volume.service_uuid = service_uuid
        _release(volume)
        session.add(volume)
    return volume


async def mark_error(db: Database, volume_id: str, reason: str, worker: str) -> bool:
    """``creating`` -> ``error`` with the reason, the quota given back (once) and the volume
    released; False if ``worker`` no longer holds it."""
    async with db.session() as session:
        volume = await _held(session, volume_id, worker, VolumeStatus.CREATING)
        if volume is None:
            return False
        volume.status = VolumeStatus.ERROR
        volume.error_reason = reason[:_ERROR_REASON_MAX]
        _release(volume)
        await _release_quota(session, volume)
        session.add(volume)
    return True


async def set_status(db: Database, volume_id: str, expected: str, status: str, worker: str) -> bool:
    """``expected`` -> ``status`` and the volume released; False if ``worker`` no longer holds
    it in ``expected``."""
    async with db.session() as session:
        volume = await _held(session, volume_id, worker, expected)
        if volume is None:
            return False
        volume.status = status
        _release(volume)
        session.add(volume)
    return True


async def hand_back(
    db: Database, volume_id: str, worker: str, host: str, reason: str
) -> RetryState | None:
    """Gives a volume whose create failed here back to the schedulers (Cinder: ``host =
    None``, status stays ``creating``), one attempt more and this pool tried; None if
    ``worker`` no longer holds it."""
    async with db.session() as session:
        volume = await _held(session, volume_id, worker, VolumeStatus.CREATING)
        if volume is None or volume.host != host:
            return None
        num_attempts, hosts = unplace(volume, reason)
        session.add(volume)
        return RetryState(num_attempts=num_attempts, hosts=hosts, last_error=reason)


async def destroy_volume(db: Database, volume_id: str, worker: str) -> bool:
    """Deletes the metadata and the row and gives the quota back, in one transaction; False if
    the row is already gone or ``worker`` no longer holds it."""
    async with db.session() as session:
        volume = await _held(session, volume_id, worker, VolumeStatus.DELETING)
        if volume is None:
            return False
        await _release_quota(session, volume)
        await session.exec(delete(VolumeMetadata).where(col(VolumeMetadata.volume_id) == volume_id))
        await session.delete(volume)
    return True
