"""A volume's source (the snapshot or the volume it is created from), as the api, the
schedulers and the volume managers read it.

* :func:`source_backend`: the backend (``host@backend``) that holds a create's source; a
  volume made from a source is placed there only (the drivers clone within a backend).
* :func:`creating_from_snapshot`: a clause for a snapshot's conditional writes: true while a
  volume is being created from it. A snapshot delete puts it in its ``WHERE`` (with the
  snapshot row locked), so a snapshot a clone is reading from is never deleted; the create
  checks the snapshot is ``available`` with the row locked in the transaction that writes the
  new volume (:func:`locked_snapshot`), so the two cannot both win.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.models import Snapshot, Volume, VolumeStatus

__all__ = ["creating_from_snapshot", "locked_snapshot", "source_backend", "source_volume_of"]


def creating_from_snapshot(snapshot_id: str) -> ColumnElement[bool]:
    """True while a volume is being created from ``snapshot_id``."""
    return exists().where(
        col(Volume.snapshot_id) == snapshot_id, col(Volume.status) == VolumeStatus.CREATING
    )


async def locked_snapshot(session: AsyncSession, snapshot_id: str) -> Snapshot | None:
    """The snapshot row as it is now, locked until the transaction ends."""
    return await session.get(Snapshot, snapshot_id, with_for_update=True, populate_existing=True)


async def source_volume_of(
    session: AsyncSession, snapshot_id: str | None, source_volid: str | None
) -> Volume | None:
    """The volume that holds a create's source: the source volume, or the snapshot's volume."""
    if source_volid:
        return await session.get(Volume, source_volid)
    if snapshot_id:
        query = (
            select(Volume)
            .join(Snapshot, col(Snapshot.volume_id) == col(Volume.id))
            .where(col(Snapshot.id) == snapshot_id)
        )
        return (await session.exec(query)).first()
    return None


async def source_backend(
    session: AsyncSession, snapshot_id: str | None, source_volid: str | None
) -> str:
    """``host@backend`` of the volume that holds the source; empty without a source (or if
    that volume is not placed, which a source never is once ``available``)."""
    volume = await source_volume_of(session, snapshot_id, source_volid)
    if volume is None or not volume.host:
        return ""
    return volume.host.partition("#")[0]
