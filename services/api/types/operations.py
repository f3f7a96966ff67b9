"""Volume types: Cinder's list, show, default, create and delete, and the type view.

Visibility as in Cinder: other users than admins see public types only (a private type is
"not found" for them) and, of the extra specs, only the user-visible keys; ``qos_specs_id`` is
shown to admins only. Types are created and deleted by admins only, with Cinder's policy
messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    Volume,
    VolumeType,
    VolumeTypeExtraSpec,
)
from cindermesh.errors import Conflict, InvalidInput, NotFound
from cindermesh_pb.api.v1 import type_service_pb2 as types_pb2
from services.api.edge.request_context import RequestContext
from services.api.policy import require_admin
from services.api.schema import bool_from_string
from services.api.types.body import TypeCreateInput
from services.api.view_values import NULL, text_or_null

__all__ = [
    "USER_VISIBLE_EXTRA_SPECS",
    "TypeRecord",
    "VolumeTypeOperations",
    "parse_is_public",
    "type_view",
]

#: The extra specs every user may read (Cinder's ``USER_VISIBLE_EXTRA_SPECS``).
USER_VISIBLE_EXTRA_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")


@dataclass(frozen=True)
class TypeRecord:
    """A type row with its extra specs."""

    volume_type: VolumeType
    extra_specs: Mapping[str, str]


def parse_is_public(value: str | None) -> bool | None:
    """Cinder's ``_parse_is_public``: absent -> public only, ``none`` -> all, else a boolean."""
    if value is None:
        return True
    if value.lower() == "none":
        return None
    parsed = bool_from_string(value)
    if parsed is None:
        raise InvalidInput(f"Invalid is_public filter [{value}]")
    return parsed


def type_view(ctx: RequestContext, record: TypeRecord, access_field: bool) -> types_pb2.VolumeType:
    """Cinder's type view; ``access_field`` adds ``os-volume-type-access:is_public``."""
    volume_type = record.volume_type
    admin = ctx.caller.is_admin
    specs = dict(record.extra_specs)
    if not admin:
        specs = {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}
    view = types_pb2.VolumeType(
        id=volume_type.id,
        name=volume_type.name,
        description=text_or_null(volume_type.description),
        is_public=volume_type.is_public,
        extra_specs=specs,
    )
    if admin:
        view.qos_specs_id.CopyFrom(NULL)
    if access_field:
        view.os_volume_type_access_is_public = volume_type.is_public
    return view


async def _records(session: AsyncSession, types: Sequence[VolumeType]) -> list[TypeRecord]:
    ids = [t.id for t in types]
    specs: dict[str, dict[str, str]] = {i: {} for i in ids}
    rows = await session.exec(
        select(VolumeTypeExtraSpec).where(col(VolumeTypeExtraSpec.volume_type_id).in_(ids))
    )
    for row in rows:
        specs[row.volume_type_id][row.key] = row.value
    return [TypeRecord(t, specs[t.id]) for t in types]


class VolumeTypeOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, ctx: RequestContext, is_public: str | None) -> list[TypeRecord]:
        """Newest first, as Cinder sorts by default (``created_at`` descending)."""
        wanted = parse_is_public(is_public) if ctx.caller.is_admin else True
        query = select(VolumeType)
        if wanted is not None:
            query = query.where(VolumeType.is_public == wanted)
        query = query.order_by(col(VolumeType.created_at).desc(), col(VolumeType.id).desc())
        async with self._db.read() as session:
            return await _records(session, list(await session.exec(query)))

    async def get(self, ctx: RequestContext, type_id: str) -> TypeRecord:
        async with self._db.read() as session:
            return await self._find(session, ctx, type_id)

    async def get_default(self, ctx: RequestContext) -> TypeRecord:
        async with self._db.read() as session:
            query = select(VolumeType).where(VolumeType.name == DEFAULT_VOLUME_TYPE)
            found = (await session.exec(query)).first()
            if found is None:
                raise NotFound("Default volume type can not be found.")
            return (await _records(session, [found]))[0]

    async def create(self, ctx: RequestContext, request: TypeCreateInput) -> TypeRecord:
        require_admin(ctx, "volume_extension:type_create")
        exists = Conflict(f"Volume Type {request.name} already exists.")
        volume_type = VolumeType(
            name=request.name, description=request.description, is_public=request.is_public
        )
        try:
            async with self._db.session() as session:
                taken = await session.exec(
                    select(VolumeType.id).where(VolumeType.name == request.name)
                )
                if taken.first() is not None:
                    raise exists
                session.add(volume_type)
                await session.flush()
                session.add_all(
                    VolumeTypeExtraSpec(volume_type_id=volume_type.id, key=k, value=v)
                    for k, v in request.extra_specs.items()
                )
        except IntegrityError as error:  # a concurrent create of the same name
            raise exists from error
        return TypeRecord(volume_type, dict(request.extra_specs))

    async def delete(self, ctx: RequestContext, type_id: str) -> None:
        """Refused for the default type and for a type volumes still use."""
        require_admin(ctx, "volume_extension:type_delete")
        async with self._db.session() as session:
            volume_type = (await self._find(session, ctx, type_id)).volume_type
            if volume_type.name == DEFAULT_VOLUME_TYPE:
                raise InvalidInput(
                    f"The volume type {volume_type.id} is a default volume type and cannot "
                    "be deleted."
                )
            in_use = await session.exec(
                select(Volume.id).where(Volume.volume_type_id == volume_type.id).limit(1)
            )
            if in_use.first() is not None:
                raise InvalidInput("Target volume type is still in use.")
            await session.exec(
                delete(VolumeTypeExtraSpec).where(
                    col(VolumeTypeExtraSpec.volume_type_id) == volume_type.id
                )
            )
            await session.exec(delete(VolumeType).where(col(VolumeType.id) == volume_type.id))

    @staticmethod
    async def _find(session: AsyncSession, ctx: RequestContext, type_id: str) -> TypeRecord:
        """By id; a private type is not found for other users than admins."""
        query = select(VolumeType).where(VolumeType.id == type_id)
        if not ctx.caller.is_admin:
            query = query.where(col(VolumeType.is_public).is_(True))
        found = (await session.exec(query)).first()
        if found is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        return (await _records(session, [found]))[0]
