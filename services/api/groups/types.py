"""Group types and their group specs: Cinder's ``group_types`` and ``group_specs``
controllers and ``cinder/volume/group_types.py``, over ``group_types`` / ``group_type_specs``.

Admins manage them (the servicer's edge checks the rules); everyone may list and show the
public ones. Lists are sorted and paginated as Cinder's (newest first by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import Group, GroupType, GroupTypeSpec, utcnow
from cindermesh.errors import Conflict, InvalidInput, NotFound
from cindermesh_pb.api.v1 import group_service_pb2 as pb
from services.api.edge.request_context import RequestContext
from services.api.groups.body import GroupTypeCreateInput, GroupTypeUpdateInput
from services.api.schema import validate_integer
from services.api.types.operations import parse_is_public
from services.api.volumes.listing import parse_limit, parse_sort

__all__ = ["GroupTypeOperations", "GroupTypeRecord", "find_group_type"]

_SORT_COLUMNS = {
    "id": GroupType.id,
    "name": GroupType.name,
    "description": GroupType.description,
    "is_public": GroupType.is_public,
    "created_at": GroupType.created_at,
    "updated_at": GroupType.updated_at,
}


@dataclass(frozen=True)
class GroupTypeRecord:
    group_type: GroupType
    specs: dict[str, str | None]


def _not_found(group_type_id: str) -> NotFound:
    return NotFound(f"Group type {group_type_id} could not be found.")


async def find_group_type(session: AsyncSession, ctx: RequestContext, name_or_id: str) -> GroupType:
    """By id, else by name (Cinder's ``group_type_get`` then ``..._by_name``); a private
    type only for admins."""
    query = select(GroupType).where(GroupType.id == name_or_id)
    by_name = select(GroupType).where(GroupType.name == name_or_id)
    found = (await session.exec(query)).first() or (await session.exec(by_name)).first()
    if found is None or (not found.is_public and not ctx.caller.is_admin):
        raise _not_found(name_or_id)
    return found


async def _get(session: AsyncSession, ctx: RequestContext, group_type_id: str) -> GroupType:
    found = await session.get(GroupType, group_type_id)
    if found is None or (not found.is_public and not ctx.caller.is_admin):
        raise _not_found(group_type_id)
    return found


async def _specs(
    session: AsyncSession, type_ids: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    by_type: dict[str, dict[str, str | None]] = {i: {} for i in type_ids}
    rows = await session.exec(
        select(GroupTypeSpec).where(col(GroupTypeSpec.group_type_id).in_(type_ids))
    )
    for row in sorted(rows, key=lambda r: r.key):
        by_type[row.group_type_id][row.key] = row.value
    return by_type


async def _record(session: AsyncSession, group_type: GroupType) -> GroupTypeRecord:
    return GroupTypeRecord(group_type, (await _specs(session, [group_type.id]))[group_type.id])


async def _set_specs(session: AsyncSession, group_type_id: str, specs: Mapping[str, str]) -> None:
    """Cinder's ``group_type_specs_update_or_create``."""
    current = {
        row.key: row
        for row in await session.exec(
            select(GroupTypeSpec).where(GroupTypeSpec.group_type_id == group_type_id)
        )
    }
    for key, value in specs.items():
        if key in current:
            current[key].value = value
            session.add(current[key])
        else:
            session.add(GroupTypeSpec(group_type_id=group_type_id, key=key, value=value))


def _page(rows: list[GroupType], request: pb.ListGroupTypesRequest) -> list[GroupType]:
    """``marker``, ``offset`` and ``limit`` over the sorted rows."""
    if request.HasField("marker"):
        ids = [r.id for r in rows]
        if request.marker not in ids:
            raise NotFound(f"Group type {request.marker} could not be found.")
        rows = rows[ids.index(request.marker) + 1 :]
    offset = validate_integer("offset", request.offset, 0) if request.HasField("offset") else 0
    limit = parse_limit(request.limit) if request.HasField("limit") else None
    rows = rows[offset:]
    return rows if limit is None else rows[:limit]


class GroupTypeOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, ctx: RequestContext, request: pb.ListGroupTypesRequest
    ) -> list[GroupTypeRecord]:
        """Admins filter by ``is_public`` (public only by default, ``None``: all); others see
        the public ones."""
        wanted: bool | None = True
        if ctx.caller.is_admin:
            wanted = parse_is_public(request.is_public if request.HasField("is_public") else None)
        query = select(GroupType)
        if wanted is not None:
            query = query.where(col(GroupType.is_public).is_(wanted))
        for key, direction in parse_sort(request, _SORT_COLUMNS):
            column = col(_SORT_COLUMNS[key])
            query = query.order_by(column.desc() if direction == "desc" else column.asc())
        async with self._db.read() as session:
            rows = _page(list(await session.exec(query)), request)
            specs = await _specs(session, [r.id for r in rows])
        return [GroupTypeRecord(r, specs[r.id]) for r in rows]

    async def get(self, ctx: RequestContext, group_type_id: str) -> GroupTypeRecord:
        async with self._db.read() as session:
            return await _record(session, await _get(session, ctx, group_type_id))

    async def create(self, given: GroupTypeCreateInput) -> GroupTypeRecord:
        exists = Conflict(f"Group Type {given.name} already exists.")
        try:
            async with self._db.session() as session:
                found = await session.exec(select(GroupType.id).where(GroupType.name == given.name))
                if found.first() is not None:
                    raise exists
                row = GroupType(
                    name=given.name, description=given.description, is_public=given.is_public
                )
                session.add(row)
                await session.flush()
                await _set_specs(session, row.id, given.group_specs)
                await session.flush()
                return await _record(session, row)
        except IntegrityError:
            raise exists from None

    async def update(
        self, ctx: RequestContext, group_type_id: str, change: GroupTypeUpdateInput
    ) -> GroupTypeRecord:
        try:
            async with self._db.session() as session:
                row = await _get(session, ctx, group_type_id)
                if change.name is not None:
                    clash = await session.exec(
                        select(GroupType.id).where(
                            GroupType.name == change.name, GroupType.id != group_type_id
                        )
                    )
                    if clash.first() is not None:
                        raise Conflict(f"Group Type {change.name} already exists.")
                    row.name = change.name
                if change.description is not None:
                    row.description = change.description
                if change.is_public is not None:
                    row.is_public = change.is_public
                row.updated_at = utcnow()
                session.add(row)
                await session.flush()
                return await _record(session, row)
        except IntegrityError:
            raise Conflict(f"Group Type {change.name} already exists.") from None

    async def delete(self, ctx: RequestContext, group_type_id: str) -> None:
        """Refused while a group has the type."""
        async with self._db.session() as session:
            await _get(session, ctx, group_type_id)
            used = await session.exec(select(Group.id).where(Group.group_type_id == group_type_id))
            if used.first() is not None:
                raise InvalidInput("Target group type is still in use.")
            await session.exec(
                delete(GroupTypeSpec).where(col(GroupTypeSpec.group_type_id) == group_type_id)
            )
            await session.exec(delete(GroupType).where(col(GroupType.id) == group_type_id))

    async def specs(self, ctx: RequestContext, group_type_id: str) -> dict[str, str | None]:
        async with self._db.read() as session:
            return (await _record(session, await _get(session, ctx, group_type_id))).specs

    async def set_specs(
        self, ctx: RequestContext, group_type_id: str, specs: Mapping[str, str]
    ) -> None:
        async with self._db.session() as session:
            await _get(session, ctx, group_type_id)
            await _set_specs(session, group_type_id, specs)

    async def spec(self, ctx: RequestContext, group_type_id: str, key: str) -> str | None:
        specs = await self.specs(ctx, group_type_id)
        if key not in specs:
            raise NotFound(f"Group Type {group_type_id} has no extra spec with key {key}.")
        return specs[key]

    async def delete_spec(self, ctx: RequestContext, group_type_id: str, key: str) -> None:
        async with self._db.session() as session:
            await _get(session, ctx, group_type_id)
            result = await session.exec(
                delete(GroupTypeSpec).where(
                    col(GroupTypeSpec.group_type_id) == group_type_id,
                    col(GroupTypeSpec.key) == key,
                )
            )
            if int(result.rowcount) != 1:
                raise NotFound(f"Group Type {group_type_id} has no specs with key {key}.")
