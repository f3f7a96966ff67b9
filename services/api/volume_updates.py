"""Changing a volume: ``PUT /volumes/{id}`` and the metadata sub-resource.

Bodies arrive as ``google.protobuf.Value``s and are checked against Cinder's JSON schemas
(update: ``volume`` with name/description/metadata and nothing else; metadata: a flat map of
strings; ``meta``: exactly one key), with Cinder's messages; names, descriptions and metadata
values without control characters (``services.api.schema``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from google.protobuf import struct_pb2
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeMetadata, utcnow
from cindermesh.errors import InvalidInput, NotFound, PreconditionFailed
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.lookups import find_volume, records_for
from services.api.request_context import RequestContext
from services.api.schema import (
    bounded_messages,
    check_no_additional,
    check_non_empty,
    check_present,
    check_string_map,
    invalid_field,
    not_valid_under_any,
    require_object,
    to_python,
)
from services.api.validation import check_description, check_name
from services.api.views import VolumeRecord

__all__ = [
    "VolumeChange",
    "VolumeUpdates",
    "metadata_etag",
    "metadata_etag_header",
    "parse_meta",
    "parse_metadata",
    "parse_update",
]

_UPDATE_KEYS = ("name", "display_name", "description", "display_description", "metadata")


@dataclass(frozen=True)
class VolumeChange:
    """What an update asks for: only the fields flagged ``set_*`` (or a metadata) change."""

    set_name: bool = False
    name: str | None = None
    set_description: bool = False
    description: str | None = None
    #: Replaces all metadata when given.
    metadata: dict[str, str] | None = None


@bounded_messages
def parse_update(body: struct_pb2.Value, present: bool, ctx: RequestContext) -> VolumeChange:
    """Cinder's volume update schema."""
    check_present(present, "volume")
    raw = to_python(body)
    volume = require_object("volume", raw)
    names = {k: check_name(k, volume[k]) for k in ("name", "display_name") if k in volume}
    descriptions = {
        k: check_description(k, volume[k])
        for k in ("description", "display_description")
        if k in volume
    }
    metadata = (
        check_string_map("metadata", volume["metadata"], nullable=False)
        if "metadata" in volume
        else None
    )
    check_no_additional("volume", volume, _UPDATE_KEYS)
    if ctx.version.at_least(53) and not volume:
        raise invalid_field("volume", raw, not_valid_under_any(raw))
    return VolumeChange(
        set_name=bool(names),
        name=names.get("name", names.get("display_name")),
        set_description=bool(descriptions),
        description=descriptions.get("description", descriptions.get("display_description")),
        metadata=metadata,
    )


@bounded_messages
def parse_metadata(body: struct_pb2.Value, present: bool) -> dict[str, str]:
    """Cinder's ``{"metadata": {...}}`` schema (POST and PUT of the whole metadata)."""
    check_present(present, "metadata")
    return check_string_map("metadata", to_python(body), nullable=False)


@bounded_messages
def parse_meta(body: struct_pb2.Value, present: bool, key: str) -> tuple[str, str]:
    """Cinder's ``{"meta": {"<key>": "v"}}`` schema; the key must be the URL's."""
    check_present(present, "meta")
    raw = to_python(body)
    meta = check_string_map("meta", raw, nullable=False)
    check_non_empty("meta", raw)
    if len(meta) > 1:
        raise invalid_field("meta", raw, f"{raw!r} has too many properties")
    if key not in meta:
        raise InvalidInput("Request body and URI mismatch")
    return key, meta[key]


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
