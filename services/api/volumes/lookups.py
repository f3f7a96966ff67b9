"""Database look-ups the api's handlers share."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import attachments, volume_actions
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    Service,
    Volume,
    VolumeMetadata,
    VolumeType,
)
from cindermesh.errors import NotFound
from cindermesh.settings import Settings
from services.api.edge.request_context import RequestContext
from services.api.schema import UUID_LIKE
from services.api.types.operations import shared_with
from services.api.volumes.views import VolumeRecord

#: The admin metadata keys a volume's view shows in its ``metadata`` (Cinder's).
VISIBLE_ADMIN_KEYS = ("readonly", "attached_mode")

__all__ = [
    "find_volume",
    "find_volume_type",
    "known_availability_zones",
    "manager_address",
    "records_for",
]


async def find_volume(session: AsyncSession, ctx: RequestContext, volume_id: str) -> Volume:
    """The volume if the caller may see it (its project's, or any for an admin), else NotFound."""
    query = select(Volume).where(Volume.id == volume_id)
    if not ctx.caller.is_admin:
        query = query.where(Volume.project_id == ctx.project_id)
    volume = (await session.exec(query)).first()
    if volume is None:
        raise NotFound(f"Volume {volume_id} could not be found.")
    return volume


async def find_volume_type(
    session: AsyncSession, ctx: RequestContext, name_or_id: str | None
) -> VolumeType:
    """By id when it looks like a uuid, else by name; None: the default type.

    A private type is visible to admins and to the projects it is shared with (Cinder's
    ``_volume_type_get_query``).
    """
    if name_or_id is None:
        query = select(VolumeType).where(VolumeType.name == DEFAULT_VOLUME_TYPE)
        message = "Default volume type can not be found."
    elif UUID_LIKE.match(name_or_id):
        query = select(VolumeType).where(VolumeType.id == name_or_id)
        message = f"Volume type {name_or_id} could not be found."
    else:
        query = select(VolumeType).where(VolumeType.name == name_or_id)
        message = f"Volume type with name {name_or_id} could not be found."
    if not ctx.caller.is_admin:
        query = query.where(or_(col(VolumeType.is_public).is_(True), shared_with(ctx.project_id)))
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound(message)
    return found


async def known_availability_zones(session: AsyncSession, settings: Settings) -> set[str]:
    zones = {backend.availability_zone for backend in settings.backends}
    zones.update(await session.exec(select(Service.availability_zone).distinct()))
    zones.add(settings.api.default_availability_zone)
    return zones


async def records_for(session: AsyncSession, volumes: Sequence[Volume]) -> list[VolumeRecord]:
    """Volumes with their metadata (and the admin metadata Cinder shows in it), type names
    and attachments, in four queries."""
    ids = [v.id for v in volumes]
    metadata: dict[str, dict[str, str]] = {i: {} for i in ids}
    for row in await session.exec(
        select(VolumeMetadata).where(col(VolumeMetadata.volume_id).in_(ids))
    ):
        metadata[row.volume_id][row.key] = row.value
    # Cinder's add_visible_admin_metadata: the visible admin keys over the user's.
    for volume_id, admin in (await volume_actions.admin_metadata(session, ids)).items():
        metadata[volume_id].update((k, v) for k, v in admin.items() if k in VISIBLE_ADMIN_KEYS)
    type_ids = {v.volume_type_id for v in volumes}
    names = {
        t.id: t.name
        for t in await session.exec(select(VolumeType).where(col(VolumeType.id).in_(type_ids)))
    }
    attached = await attachments.attachments_of(session, ids)
    return [
        VolumeRecord(
            volume=v,
            metadata=metadata[v.id],
            type_name=names.get(v.volume_type_id, ""),
            attachments=attached[v.id],
        )
        for v in volumes
    ]


async def manager_address(session: AsyncSession, host: str | None) -> str | None:
    """The address of the volume manager of ``host`` (host@backend#pool), if it is
    registered."""
    if host is None:
        return None
    backend = host.partition("#")[0]
    service = (await session.exec(select(Service).where(Service.host == backend))).first()
    return service.address if service is not None else None
