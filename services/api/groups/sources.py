"""Create a group from a source (Cinder's ``create_from_src``, 3.14): a new group of the
source's type and volume types, with one volume made from each volume of a source group
(a clone) or from each snapshot of a group snapshot, each through the volume create flow
(``services.api.volumes.create_flow``: quota, scheduling to the source's backend and the
manager's clone, as any create from a source). The group is ``creating`` until every volume
was accepted, then ``available``; a volume refused leaves it in ``error``.

Each volume's create runs under its own request id (the request's, with ``-<n>``), so that a
create of several volumes in one request is not answered as one retried create.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from google.protobuf import struct_pb2
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import groups
from cindermesh.db.engine import Database
from cindermesh.db.models import Group, GroupSnapshot, GroupStatus, Snapshot, Volume
from cindermesh.errors import CindermeshError, NotFound
from cindermesh.settings import Settings
from cindermesh.telemetry.request_id import current_request_id, request_id_var
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.groups.body import GroupSourceInput, validate_group_source
from services.api.groups.membership import find_group, invalid_group
from services.api.policy import authorize
from services.api.volumes.create_flow import CreateVolumeFlow

__all__ = ["GroupSources", "find_group_snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Member:
    """One volume of the new group: made from this volume or snapshot."""

    source_volid: str | None = None
    snapshot_id: str | None = None


async def find_group_snapshot(
    session: AsyncSession, ctx: RequestContext, group_snapshot_id: str
) -> GroupSnapshot:
    query = select(GroupSnapshot).where(GroupSnapshot.id == group_snapshot_id)
    if not ctx.caller.is_admin:
        query = query.where(GroupSnapshot.project_id == ctx.project_id)
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound(f"GroupSnapshot {group_snapshot_id} could not be found.")
    return found


def _text(value: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=value)


class GroupSources:
    def __init__(self, db: Database, settings: Settings, create_flow: CreateVolumeFlow) -> None:
        self._db = db
        self._settings = settings
        self._create_flow = create_flow

    async def create(self, ctx: RequestContext, body: struct_pb2.Value) -> Group:
        given = validate_group_source(body)
        async with self._db.session() as session:
            source_group, members = await self._source(session, ctx, given)
            authorize(ctx, "group:create")
            type_ids = (await groups.volume_type_ids(session, [source_group.id]))[source_group.id]
            group = Group(
                project_id=ctx.project_id,
                user_id=ctx.caller.user_id,
                name=given.name,
                description=given.description,
                status=GroupStatus.CREATING,
                availability_zone=source_group.availability_zone,
                group_type_id=source_group.group_type_id,
                group_snapshot_id=given.group_snapshot_id,
                source_group_id=given.source_group_id,
            )
            await groups.add(session, group, type_ids, self._settings.quotas)
        status = GroupStatus.AVAILABLE
        try:
            await self._create_volumes(ctx, group, members)
        except CindermeshError:
            status = GroupStatus.ERROR
            raise
        finally:
            async with self._db.session() as session:
                await groups.set_status(session, group.id, status, [GroupStatus.CREATING])
        group.status = status
        return group

    async def _source(
        self, session: AsyncSession, ctx: RequestContext, given: GroupSourceInput
    ) -> tuple[Group, list[_Member]]:
        """The source's group and the new group's members; Cinder's 400 for an empty one."""
        if given.group_snapshot_id is not None:
            snapshot = await find_group_snapshot(session, ctx, given.group_snapshot_id)
            source_group = await find_group(session, ctx, snapshot.group_id)
            query = (
                select(Snapshot.id)
                .where(Snapshot.group_snapshot_id == snapshot.id)
                .order_by(col(Snapshot.created_at))
            )
            members = [_Member(snapshot_id=i) for i in await session.exec(query)]
            if not members:
                raise invalid_group("Group snapshot is empty. No group will be created.")
            return source_group, members
        assert given.source_group_id is not None
        source_group = await find_group(session, ctx, given.source_group_id)
        query = (
            select(Volume.id)
            .where(Volume.group_id == source_group.id)
            .order_by(col(Volume.created_at))
        )
        members = [_Member(source_volid=i) for i in await session.exec(query)]
        if not members:
            raise invalid_group("Source Group is empty. No group will be created.")
        return source_group, members

    async def _create_volumes(
        self, ctx: RequestContext, group: Group, members: list[_Member]
    ) -> None:
        request_id = current_request_id()
        for index, member in enumerate(members):
            body = api_pb2.VolumeCreate(group_id=_text(group.id))
            if member.source_volid is not None:
                body.source_volid.CopyFrom(_text(member.source_volid))
            if member.snapshot_id is not None:
                body.snapshot_id.CopyFrom(_text(member.snapshot_id))
            token = request_id_var.set(f"{request_id}-{index}")
            try:
                record = await self._create_flow.run(ctx, body)
            finally:
                request_id_var.reset(token)
            log.info("group %s: volume %s from %s", group.id, record.volume.id, member)
