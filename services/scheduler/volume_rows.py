"""The scheduler's writes to the volume row, each one transaction.

* :func:`record_host`: the chosen pool (and its service) on a volume still ``creating``, as
  Cinder's scheduler writes ``host`` and ``availability_zone`` before casting to the backend.
* :func:`mark_error`: a volume that cannot be placed goes to ``error`` with a reason, loses its
  host, and gives its quota back exactly once (``quota_held`` is cleared in the same
  transaction).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import Service, Volume, VolumeStatus, VolumeType, utcnow
from cindermesh.errors import CindermeshError
from services.scheduler.backend_state import PoolState
from services.scheduler.spec import VolumeSpec

__all__ = ["VolumeGone", "mark_error", "record_host"]

_REASON_LENGTH = 1024


class VolumeGone(CindermeshError):
    """The volume was deleted, or left ``creating``, while it was being scheduled."""

    def __init__(self, volume_id: str) -> None:
        super().__init__(f"Volume {volume_id} is no longer waiting to be created")


async def record_host(db: Database, spec: VolumeSpec, pool: PoolState) -> None:
    """Writes ``host@backend#pool``, the service uuid and the pool's zone on the row."""
    async with db.session() as session:
        row = await session.get(Volume, spec.volume_id)
        if row is None or row.status != VolumeStatus.CREATING:
            raise VolumeGone(spec.volume_id)
        service = await session.get(Service, pool.backend)
        row.host = pool.pool_id
        row.service_uuid = service.uuid if service is not None else None
        if pool.availability_zone:
            row.availability_zone = pool.availability_zone
        row.updated_at = utcnow()


async def _type_name(session: AsyncSession, spec: VolumeSpec, row: Volume) -> str:
    if spec.volume_type.name:
        return spec.volume_type.name
    volume_type = await session.get(VolumeType, row.volume_type_id)
    return volume_type.name if volume_type is not None else ""


async def mark_error(db: Database, spec: VolumeSpec, reason: str) -> bool:
    """Puts a ``creating`` volume in ``error``; False if it is gone or no longer creating."""
    async with db.session() as session:
        row = await session.get(Volume, spec.volume_id)
        if row is None or row.status != VolumeStatus.CREATING:
            return False
        row.status = VolumeStatus.ERROR
        row.error_reason = reason[:_REASON_LENGTH]
        row.host = None
        row.service_uuid = None
        row.updated_at = utcnow()
        if row.quota_held:
            type_name = await _type_name(session, spec, row)
            await quota.release(session, row.project_id, quota.volume_deltas(row.size, type_name))
            row.quota_held = False
        return True
