"""The database reads and writes of the volume manager, one transaction per function.

Quota is given back at most once per volume: only while ``quota_held`` is set, which the same
transaction clears (the scheduler follows the same rule).
"""

from __future__ import annotations

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeMetadata, VolumeStatus, VolumeType, utcnow
from services.volume.errors import VolumeNotFound, VolumeStateChanged

__all__ = [
    "clear_host_for_reschedule",
    "destroy_volume",
    "get_volume",
    "mark_available",
    "mark_error",
    "set_status",
]

_ERROR_REASON_MAX = 1024


async def _locked(session: AsyncSession, volume_id: str) -> Volume | None:
    return await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)


async def _release_quota(session: AsyncSession, volume: Volume) -> None:
    if not volume.quota_held:
        return
    type_name = (
        await session.exec(select(VolumeType.name).where(VolumeType.id == volume.volume_type_id))
    ).first() or ""
    await quota.release(session, volume.project_id, quota.volume_deltas(volume.size, type_name))
    volume.quota_held = False


async def get_volume(db: Database, volume_id: str) -> Volume:
    async with db.session() as session:
        volume = await session.get(Volume, volume_id)
    if volume is None:
        raise VolumeNotFound(volume_id)
    return volume


async def mark_available(db: Database, volume_id: str, service_uuid: str | None) -> Volume:
    """``creating`` -> ``available`` with ``launched_at``; refuses any other state."""
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None:
            raise VolumeNotFound(volume_id)
        if volume.status != VolumeStatus.CREATING:
            raise VolumeStateChanged(volume_id, VolumeStatus.CREATING, volume.status)
        now = utcnow()
        volume.status = VolumeStatus.AVAILABLE
        volume.launched_at = now
        volume.updated_at = now
        volume.service_uuid = service_uuid
        session.add(volume)
    return volume


async def mark_error(
    db: Database, volume_id: str, reason: str, only_if_status: str = VolumeStatus.CREATING
) -> bool:
    """Sets ``error`` and the reason and gives the quota back (once); False if the row is gone
    or no longer in ``only_if_status`` (someone else owns it now)."""
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None or volume.status != only_if_status:
            return False
        volume.status = VolumeStatus.ERROR
        volume.error_reason = reason[:_ERROR_REASON_MAX]
        volume.updated_at = utcnow()
        await _release_quota(session, volume)
        session.add(volume)
    return True


async def set_status(db: Database, volume_id: str, expected: str, status: str) -> bool:
    """``expected`` -> ``status``; False if the row is gone or in another state."""
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None or volume.status != expected:
            return False
        volume.status = status
        volume.updated_at = utcnow()
        session.add(volume)
    return True


async def clear_host_for_reschedule(db: Database, volume_id: str, host: str) -> bool:
    """Before a reschedule (Cinder: ``host = None``, status stays ``creating``); False if the
    row is gone, not ``creating`` or already placed elsewhere."""
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None or volume.status != VolumeStatus.CREATING:
            return False
        if volume.host not in (None, host):
            return False
        volume.host = None
        volume.updated_at = utcnow()
        session.add(volume)
    return True


async def destroy_volume(db: Database, volume_id: str) -> bool:
    """Deletes the metadata and the row and gives the quota back, in one transaction; False if
    the row was already gone."""
    async with db.session() as session:
        volume = await _locked(session, volume_id)
        if volume is None:
            return False
        await _release_quota(session, volume)
        await session.exec(delete(VolumeMetadata).where(col(VolumeMetadata.volume_id) == volume_id))
        await session.delete(volume)
    return True
