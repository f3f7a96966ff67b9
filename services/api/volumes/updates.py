"""Changing a volume: ``PUT /volumes/{id}`` and the metadata sub-resource (their bodies are
checked by ``services.api.volumes.body``), and the metadata's ETag."""

from __future__ import annotations

import hashlib
import json

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeMetadata, utcnow
from cindermesh.errors import NotFound, PreconditionFailed
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.volumes.body import VolumeChange
from services.api.volumes.lookups import find_volume, records_for
from services.api.volumes.views import VolumeRecord

__all__ = [
    "VolumeUpdates",
    "metadata_etag",
    "metadata_etag_header",
]


async def _metadata(session: AsyncSession, volume_id: str) -> dict[str, str]:
    rows = await session.exec(select(VolumeMetadata).where(VolumeMetadata.volume_id == volume_id))
    return {row.key: row.value for row in rows}


async def _replace_metadata(
    session: AsyncSession, volume_id: str, metadata: dict[str, str]
) -> None:
    await session.exec(delete(VolumeMetadata).where(VolumeMetadata.volume_id == volume_id))  # type: ignore[arg-type]
    session.add_all(
        VolumeMetadata(volume_id=volume_id, key=k, value=v) for k, v in metadata.items()
    )


def _touch(session: AsyncSession, volume: Volume) -> None:
    volume.updated_at = utcnow()
    session.add(volume)


def metadata_etag(metadata: dict[str, str]) -> str:
    """Cinder's checksum of the metadata document."""
    document = json.dumps({"metadata": metadata}, sort_keys=True).encode()
    return hashlib.md5(document, usedforsecurity=False).hexdigest()


def metadata_etag_header(
    ctx: RequestContext, response: api_pb2.VolumeMetadataResponse
) -> tuple[tuple[str, str], ...]:
    """From 3.15 the metadata's ``ETag`` (for a later ``If-Match``)."""
    if not ctx.version.at_least(15):
        return ()
    return (("etag", metadata_etag(dict(response.metadata))),)


class VolumeUpdates:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def update(
        self, ctx: RequestContext, volume_id: str, change: VolumeChange
    ) -> VolumeRecord:
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            if change.set_name:
                volume.name = change.name
            if change.set_description:
                volume.description = change.description
            if change.metadata is not None:
                await _replace_metadata(session, volume.id, change.metadata)
            _touch(session, volume)
            await session.flush()
            return (await records_for(session, [volume]))[0]

    async def get_metadata(self, ctx: RequestContext, volume_id: str) -> dict[str, str]:
        return await self._read_metadata(ctx, volume_id)

    async def set_metadata(
        self, ctx: RequestContext, volume_id: str, metadata: dict[str, str], replace: bool
    ) -> dict[str, str]:
        """Merges (POST) or replaces (PUT) the metadata; answers all of it.

        From 3.15 a replace honours ``If-Match`` (412 when the metadata changed meanwhile).
        """
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            current = await _metadata(session, volume.id)
            if (
                replace
                and ctx.if_match is not None
                and ctx.version.at_least(15)
                and ctx.if_match != metadata_etag(current)
            ):
                raise PreconditionFailed("Request precondition failed.")
            merged = metadata if replace else {**current, **metadata}
            await _replace_metadata(session, volume.id, merged)
            _touch(session, volume)
            return merged

    async def _read_metadata(self, ctx: RequestContext, volume_id: str) -> dict[str, str]:
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            return await _metadata(session, volume.id)

    async def get_item(self, ctx: RequestContext, volume_id: str, key: str) -> tuple[str, str]:
        metadata = await self._read_metadata(ctx, volume_id)
        if key not in metadata:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        return key, metadata[key]

    async def set_item(self, ctx: RequestContext, volume_id: str, key: str, value: str) -> None:
        await self.set_metadata(ctx, volume_id, {key: value}, replace=False)

    async def delete_item(self, ctx: RequestContext, volume_id: str, key: str) -> None:
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            if key not in await _metadata(session, volume.id):
                raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
            await session.exec(
                delete(VolumeMetadata).where(
                    col(VolumeMetadata.volume_id) == volume.id, col(VolumeMetadata.key) == key
                )
            )
            _touch(session, volume)
