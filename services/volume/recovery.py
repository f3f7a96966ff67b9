"""What a restart finds unfinished (Cinder's ``init_host`` clean-up, kept simple).

Rows of this backend (``host`` is ``<host_name>@<backend>`` or a pool of it) that are
- ``creating``: were accepted but not finished. The manager runs the create flow again; the
  driver's create is idempotent. There is no retry info left, so such a run does not
  reschedule: if it fails the volume goes to ``error`` (quota given back).
- ``deleting``: are deleted again (the driver's delete is idempotent too).
Rows in ``creating`` without a host belong to the scheduler, not to us.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, or_, select

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus, VolumeType, VolumeTypeExtraSpec
from services.volume.domain import CreateRequest, VolumeTypeRef

__all__ = ["Unfinished", "find_unfinished"]


@dataclass(frozen=True)
class Unfinished:
    creates: tuple[CreateRequest, ...]
    deletes: tuple[str, ...]


async def _volume_type(db: Database, type_id: str) -> VolumeTypeRef:
    async with db.session() as session:
        volume_type = await session.get(VolumeType, type_id)
        specs = await session.exec(
            select(VolumeTypeExtraSpec).where(VolumeTypeExtraSpec.volume_type_id == type_id)
        )
        pairs = tuple(sorted((s.key, s.value) for s in specs))
    name = volume_type.name if volume_type is not None else ""
    return VolumeTypeRef(id=type_id, name=name, extra_specs=pairs)


async def find_unfinished(db: Database, backend_host: str) -> Unfinished:
    """Work a previous run of ``backend_host`` (host@backend) accepted and did not finish."""
    ours = or_(col(Volume.host) == backend_host, col(Volume.host).startswith(f"{backend_host}#"))
    statuses = (VolumeStatus.CREATING, VolumeStatus.DELETING)
    async with db.session() as session:
        rows = list(
            await session.exec(select(Volume).where(ours, col(Volume.status).in_(statuses)))
        )
    creates = []
    for row in rows:
        if row.status == VolumeStatus.CREATING and row.host is not None:
            creates.append(
                CreateRequest(
                    volume_id=row.id,
                    project_id=row.project_id,
                    size_gb=row.size,
                    availability_zone=row.availability_zone,
                    volume_type=await _volume_type(db, row.volume_type_id),
                    host=row.host,
                    allow_reschedule=False,
                )
            )
    deletes = tuple(row.id for row in rows if row.status == VolumeStatus.DELETING)
    return Unfinished(creates=tuple(creates), deletes=deletes)
