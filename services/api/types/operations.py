"""Volume types: Cinder's list, show, default, create, update and delete, and the type view.

Visibility as in Cinder: other users than admins see public types and the private types shared
with their project (any other private type is "not found" for them) and, of the extra specs,
only the user-visible keys; ``qos_specs_id`` is shown to admins only, on list and show (Cinder's
create and update views have none, nor has update ``os-volume-type-access:is_public``). Types
are created, updated and deleted by admins only, with Cinder's policy messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    Quota,
    QuotaUsage,
    Reservation,
    Volume,
    VolumeType,
    VolumeTypeEncryption,
    VolumeTypeExtraSpec,
    VolumeTypeProject,
)
from cindermesh.errors import Conflict, InvalidInput, NotFound
from cindermesh_pb.api.v1 import type_service_pb2 as types_pb2
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.schema import bool_from_string
from services.api.types.body import TypeCreateInput, TypeUpdateInput
from services.api.view_values import text_or_null

__all__ = [
    "USER_VISIBLE_EXTRA_SPECS",
    "TypeRecord",
    "VolumeTypeOperations",
    "find_type",
    "parse_is_public",
    "shared_with",
    "type_in_use",
    "type_view",
    "visible_specs",
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


def visible_specs(ctx: RequestContext, specs: Mapping[str, str]) -> dict[str, str]:
    """All extra specs for admins (``read_sensitive``), the user-visible ones for others."""
    if ctx.caller.is_admin:
        return dict(specs)
    return {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}


def type_view(
    ctx: RequestContext, record: TypeRecord, *, access_field: bool, qos_field: bool = True
) -> types_pb2.VolumeType:
    """Cinder's type view; ``access_field`` adds ``os-volume-type-access:is_public``,
    ``qos_field`` (list and show) ``qos_specs_id`` for admins (the associated QoS specs, or
    null)."""
    volume_type = record.volume_type
    view = types_pb2.VolumeType(
        id=volume_type.id,
        name=volume_type.name,
        description=text_or_null(volume_type.description),
        is_public=volume_type.is_public,
        extra_specs=visible_specs(ctx, record.extra_specs),
    )
    if qos_field and ctx.caller.is_admin:
        view.qos_specs_id.CopyFrom(text_or_null(volume_type.qos_specs_id))
    if access_field:
        view.os_volume_type_access_is_public = volume_type.is_public
    return view


def shared_with(project_id: str) -> ColumnElement[bool]:
    """The types shared with ``project_id`` (Cinder's ``projects.any(project_id=...)``)."""
    return exists().where(
        col(VolumeTypeProject.volume_type_id) == col(VolumeType.id),
        col(VolumeTypeProject.project_id) == project_id,
    )


async def find_type(session: AsyncSession, ctx: RequestContext, type_id: str) -> VolumeType:
    """By id; for other users than admins a private type not shared with their project is not
    found (Cinder's ``volume_type_get``)."""
    query = select(VolumeType).where(VolumeType.id == type_id)
    if not ctx.caller.is_admin:
        query = query.where(
            or_(col(VolumeType.is_public).is_(True), shared_with(ctx.caller.project_id))
        )
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return found


async def type_in_use(session: AsyncSession, type_id: str) -> bool:
    """Whether any volume (of any project) is of the type."""
    query = select(Volume.id).where(Volume.volume_type_id == type_id).limit(1)
    return (await session.exec(query)).first() is not None


#: The per-type quota resources Cinder renames with the type (``update_quota_resource``).
_PER_TYPE_RESOURCES = ("volumes_", "gigabytes_", "snapshots_")


async def _rename_quota_resources(session: AsyncSession, old: str, new: str) -> None:
    for prefix in _PER_TYPE_RESOURCES:
        for table in (Quota, QuotaUsage, Reservation):
            await session.exec(
                update(table)
                .where(col(table.resource) == f"{prefix}{old}")
                .values(resource=f"{prefix}{new}")
            )


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

    @property
    def db(self) -> Database:
        return self._db

    async def list(self, ctx: RequestContext, is_public: str | None) -> list[TypeRecord]:
        """Newest first, as Cinder sorts by default (``created_at`` descending). Public types
        include those shared with the caller's project; ``is_public=false`` (admins) lists the
        private ones."""
        wanted = parse_is_public(is_public) if ctx.caller.is_admin else True
        query = select(VolumeType)
        if wanted is True:
            query = query.where(
                or_(col(VolumeType.is_public).is_(True), shared_with(ctx.caller.project_id))
            )
        elif wanted is False:
            query = query.where(col(VolumeType.is_public).is_(False))
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
        authorize(ctx, "volume_extension:type_create")
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
        authorize(ctx, "volume_extension:type_delete")
        async with self._db.session() as session:
            volume_type = (await self._find(session, ctx, type_id)).volume_type
            if volume_type.name == DEFAULT_VOLUME_TYPE:
                raise InvalidInput(
                    f"The volume type {volume_type.id} is a default volume type and cannot "
                    "be deleted."
                )
            if await type_in_use(session, volume_type.id):
                raise InvalidInput("Target volume type is still in use.")
            for table in (VolumeTypeExtraSpec, VolumeTypeProject, VolumeTypeEncryption):
                await session.exec(delete(table).where(col(table.volume_type_id) == volume_type.id))
            await session.exec(delete(VolumeType).where(col(VolumeType.id) == volume_type.id))

    async def update(
        self, ctx: RequestContext, type_id: str, request: TypeUpdateInput
    ) -> TypeRecord:
        """Cinder's ``volume_types.update``: the given fields; a new name must be free (the
        per-type quota resources follow it)."""
        authorize(ctx, "volume_extension:type_update")
        try:
            async with self._db.session() as session:
                volume_type = await find_type(session, ctx, type_id)
                old_name = volume_type.name
                if request.name is not None and request.name != old_name:
                    taken = await session.exec(
                        select(VolumeType.id).where(
                            VolumeType.name == request.name, VolumeType.id != type_id
                        )
                    )
                    if taken.first() is not None:
                        raise Conflict(f"Volume Type {request.name} already exists.")
                    volume_type.name = request.name
                    await _rename_quota_resources(session, old_name, request.name)
                if request.description is not None:
                    volume_type.description = request.description
                if request.is_public is not None:
                    volume_type.is_public = request.is_public
                session.add(volume_type)
                await session.flush()
                record = (await _records(session, [volume_type]))[0]
        except IntegrityError as error:  # a concurrent create or rename to the same name
            raise Conflict(f"Volume Type {request.name} already exists.") from error
        return record

    @staticmethod
    async def _find(session: AsyncSession, ctx: RequestContext, type_id: str) -> TypeRecord:
        return (await _records(session, [await find_type(session, ctx, type_id)]))[0]
