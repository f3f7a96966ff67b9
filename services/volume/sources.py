"""The source of a volume made from a snapshot or from another volume, as the create flow
reads it (the rows are the api's; the manager only reads them)."""

from __future__ import annotations

from cindermesh.db.engine import Database
from cindermesh.db.models import Snapshot, Volume
from services.volume.drivers.base import SnapshotRef, SourceVolumeRef
from services.volume.errors import NotReschedulable

__all__ = ["SourceGone", "snapshot_ref", "source_volume_ref"]


class SourceGone(NotReschedulable):
    """The snapshot or volume to create from is gone: no other attempt can do better."""

    def __init__(self, kind: str, source_id: str) -> None:
        super().__init__(f"{kind} {source_id} could not be found.")


async def snapshot_ref(db: Database, snapshot_id: str) -> SnapshotRef:
    async with db.read() as session:
        snapshot = await session.get(Snapshot, snapshot_id)
    if snapshot is None:
        raise SourceGone("Snapshot", snapshot_id)
    return SnapshotRef(
        id=snapshot.id, volume_id=snapshot.volume_id, volume_size_gb=snapshot.volume_size
    )


async def source_volume_ref(db: Database, volume_id: str) -> tuple[SourceVolumeRef, str]:
    """The source volume and its status (Cinder's ``source_volstatus``)."""
    async with db.read() as session:
        volume = await session.get(Volume, volume_id)
    if volume is None:
        raise SourceGone("Volume", volume_id)
    return SourceVolumeRef(id=volume.id, size_gb=volume.size), volume.status
