"""The snapshot metadata sub-resource (``/snapshots/{id}/metadata[/key]``), as Cinder's
``SnapshotMetadataController``; bodies are checked as volume metadata's
(``services.api.volumes.body``)."""

from __future__ import annotations

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import Snapshot, SnapshotMetadata, utcnow
from cindermesh.errors import NotFound
from services.api.edge.request_context import RequestContext
from services.api.snapshots.operations import find_snapshot

__all__ = ["SnapshotMetadataOperations"]


async def _metadata(session: AsyncSession, snapshot_id: str) -> dict[str, str]:
    rows = await session.exec(
        select(SnapshotMetadata).where(col(SnapshotMetadata.snapshot_id) == snapshot_id)
    )
    return {row.key: row.value for row in rows}


def _no_key(snapshot_id: str, key: str) -> NotFound:
    return NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")


def _touch(session: AsyncSession, snapshot: Snapshot) -> None:
    snapshot.updated_at = utcnow()
    session.add(snapshot)


class SnapshotMetadataOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, ctx: RequestContext, snapshot_id: str) -> dict[str, str]:
        async with self._db.read() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            return await _metadata(session, snapshot.id)

    async def set(
        self, ctx: RequestContext, snapshot_id: str, metadata: dict[str, str], replace: bool
    ) -> dict[str, str]:
        """Merges (POST, PUT of one key) or replaces (PUT) the metadata; answers all of it."""
        async with self._db.session() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            current = await _metadata(session, snapshot.id)
            merged = metadata if replace else {**current, **metadata}
            await session.exec(
                delete(SnapshotMetadata).where(col(SnapshotMetadata.snapshot_id) == snapshot.id)
            )
            session.add_all(
                SnapshotMetadata(snapshot_id=snapshot.id, key=k, value=v) for k, v in merged.items()
            )
            _touch(session, snapshot)
            return merged

    async def get_item(self, ctx: RequestContext, snapshot_id: str, key: str) -> str:
        metadata = await self.get(ctx, snapshot_id)
        if key not in metadata:
            raise _no_key(snapshot_id, key)
        return metadata[key]

    async def delete_item(self, ctx: RequestContext, snapshot_id: str, key: str) -> None:
        async with self._db.session() as session:
            snapshot = await find_snapshot(session, ctx, snapshot_id)
            if key not in await _metadata(session, snapshot.id):
                raise _no_key(snapshot_id, key)
            await session.exec(
                delete(SnapshotMetadata).where(
                    col(SnapshotMetadata.snapshot_id) == snapshot.id,
                    col(SnapshotMetadata.key) == key,
                )
            )
            _touch(session, snapshot)
