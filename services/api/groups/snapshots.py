"""Group snapshots: Cinder's ``group_snapshots`` controller and the group API's
``create_group_snapshot`` / ``delete_group_snapshot``.

A group snapshot is one snapshot of each volume of the group, made as any snapshot is: the
rows and their quota in one transaction (``cindermesh.db.snapshots.create``, all of them or
none), then each handed to its volume's manager. Its status is its snapshots' until an admin
resets it (``GroupSnapshot.status_from_snapshots``): ``creating`` while one is, ``error`` if
one failed, else ``available``. A delete takes every snapshot out of the group snapshot and
deletes it as a snapshot delete does (``SnapshotOperations.delete``), then the row goes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota, snapshots
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    GroupSnapshot,
    GroupSnapshotStatus,
    Snapshot,
    SnapshotStatus,
    Volume,
    utcnow,
)
from cindermesh.errors import BackendUnavailable, InvalidInput
from cindermesh.settings import QuotaSettings
from cindermesh_pb.api.v1 import group_service_pb2 as pb
from services.api.clients import VolumeManagerClients
from services.api.edge.request_context import RequestContext
from services.api.groups.body import GroupSnapshotCreateInput
from services.api.groups.membership import find_group, invalid_group
from services.api.groups.sources import find_group_snapshot
from services.api.policy import authorize
from services.api.schema import is_true, validate_integer
from services.api.snapshots.operations import SnapshotOperations, check_volume
from services.api.volumes.listing import (
    ListPage,
    ListQuery,
    ListTable,
    list_page,
    parse_limit,
    parse_sort,
)
from services.api.volumes.lookups import manager_address

__all__ = [
    "GROUP_SNAPSHOTS",
    "GroupSnapshotOperations",
    "parse_group_snapshot_query",
    "shown_status",
    "shown_statuses",
]

log = logging.getLogger(__name__)

_COLUMNS = {
    "id": GroupSnapshot.id,
    "name": GroupSnapshot.name,
    "status": GroupSnapshot.status,
    "group_id": GroupSnapshot.group_id,
    "created_at": GroupSnapshot.created_at,
    "updated_at": GroupSnapshot.updated_at,
    "project_id": GroupSnapshot.project_id,
}
GROUP_SNAPSHOTS = ListTable(
    model=GroupSnapshot,
    columns=_COLUMNS,
    metadata_owner=None,
    metadata_key=None,
    metadata_value=None,
    kind="GroupSnapshot",
)
#: What a delete accepts (Cinder's ``delete_group_snapshot``).
_DELETABLE = (GroupSnapshotStatus.AVAILABLE, GroupSnapshotStatus.ERROR)


def parse_group_snapshot_query(
    ctx: RequestContext, request: pb.ListGroupSnapshotsRequest
) -> ListQuery:
    """Filters and pagination from 3.29 (Cinder ignores them before)."""
    paginated = ctx.version.at_least(29)
    names = ("name", "status", "group_id")
    filters = {n: getattr(request, n) for n in names if paginated and request.HasField(n)}
    return ListQuery(
        limit=parse_limit(request.limit) if paginated and request.HasField("limit") else None,
        marker=request.marker if paginated and request.HasField("marker") else None,
        offset=(
            validate_integer("offset", request.offset, 0)
            if paginated and request.HasField("offset")
            else 0
        ),
        sort=parse_sort(request, _COLUMNS) if paginated else (("created_at", "desc"),),
        all_tenants=(
            ctx.caller.is_admin and request.HasField("all_tenants") and is_true(request.all_tenants)
        ),
        filters=filters,
    )


def shown_status(group_snapshot: GroupSnapshot, statuses: Sequence[str]) -> str:
    """The status a group snapshot shows, given its snapshots' statuses."""
    if not group_snapshot.status_from_snapshots:
        return group_snapshot.status
    if any(s == SnapshotStatus.CREATING for s in statuses):
        return GroupSnapshotStatus.CREATING
    if any(s != SnapshotStatus.AVAILABLE for s in statuses):
        return GroupSnapshotStatus.ERROR
    return GroupSnapshotStatus.AVAILABLE


async def shown_statuses(session: AsyncSession, rows: Sequence[GroupSnapshot]) -> dict[str, str]:
    """Each row's status as shown, by id (nothing is written)."""
    statuses: dict[str, list[str]] = {r.id: [] for r in rows}
    query = select(Snapshot.group_snapshot_id, Snapshot.status).where(
        col(Snapshot.group_snapshot_id).in_(list(statuses))
    )
    for group_snapshot_id, status in await session.exec(query):
        assert group_snapshot_id is not None
        statuses[group_snapshot_id].append(status)
    return {row.id: shown_status(row, statuses[row.id]) for row in rows}


class GroupSnapshotOperations:
    def __init__(
        self,
        db: Database,
        quotas: QuotaSettings,
        managers: VolumeManagerClients,
        snapshot_ops: SnapshotOperations,
    ) -> None:
        self._db = db
        self._quotas = quotas
        self._managers = managers
        self._snapshots = snapshot_ops

    async def create(self, ctx: RequestContext, given: GroupSnapshotCreateInput) -> GroupSnapshot:
        """A snapshot of every volume of the group; each volume must be ``available`` (or
        ``in-use``), and all the snapshots' quota must fit."""
        async with self._db.session() as session:
            group = await find_group(session, ctx, given.group_id)
            authorize(ctx, "group:create_group_snapshot", {"project_id": group.project_id})
            query = select(Volume).where(Volume.group_id == group.id).with_for_update()
            members = list(await session.exec(query.order_by(col(Volume.created_at))))
            if not members:
                raise invalid_group("Group must contain at least one volume.")
            for volume in members:
                check_volume(volume, allow_in_use=True)
            group_snapshot = GroupSnapshot(
                project_id=ctx.project_id,
                user_id=ctx.caller.user_id,
                group_id=group.id,
                group_type_id=group.group_type_id,
                name=given.name,
                description=given.description,
            )
            session.add(group_snapshot)
            await session.flush()
            limits = await quota.limits_for(session, ctx.project_id, self._quotas)
            handed: list[tuple[str | None, str]] = []
            for volume in members:
                new = snapshots.NewSnapshot(
                    project_id=ctx.project_id,
                    user_id=ctx.caller.user_id,
                    name=f"snapshot-{group_snapshot.id}",
                    group_snapshot_id=group_snapshot.id,
                )
                row = await snapshots.create(session, volume, new, self._quotas, limits)
                handed.append((await manager_address(session, volume.host), row.id))
        for address, snapshot_id in handed:
            await self._hand_over(address, snapshot_id)
        return group_snapshot

    async def _hand_over(self, address: str | None, snapshot_id: str) -> None:
        if address is None:
            log.warning("snapshot %s: its volume's backend is not registered", snapshot_id)
            return
        try:
            await self._managers.create_snapshot(address, snapshot_id)
        except BackendUnavailable:
            log.warning(
                "snapshot %s: manager %s unreachable; left to its sweep", snapshot_id, address
            )

    async def get(self, ctx: RequestContext, group_snapshot_id: str) -> tuple[GroupSnapshot, str]:
        """The group snapshot and the status it shows."""
        async with self._db.read() as session:
            found = await find_group_snapshot(session, ctx, group_snapshot_id)
            return found, (await shown_statuses(session, [found]))[found.id]

    async def list(
        self, ctx: RequestContext, query: ListQuery
    ) -> tuple[ListPage[GroupSnapshot], dict[str, str]]:
        """A page, and the status each one shows."""
        async with self._db.read() as session:
            page = await list_page(session, ctx, query, GROUP_SNAPSHOTS)
            return page, await shown_statuses(session, page.rows)

    async def delete(self, ctx: RequestContext, group_snapshot_id: str) -> None:
        """``available`` or ``error`` (as shown); its snapshots leave it and are deleted as
        snapshots, and the group snapshot's row goes."""
        async with self._db.session() as session:
            found = await find_group_snapshot(session, ctx, group_snapshot_id)
            authorize(ctx, "group:delete_group_snapshot", {"project_id": found.project_id})
            if (await shown_statuses(session, [found]))[found.id] not in _DELETABLE:
                raise InvalidInput(
                    "Invalid GroupSnapshot: GroupSnapshot status must be available or error, "
                    "and no Group can be currently using it as source for its creation."
                )
            query = select(Snapshot.id).where(Snapshot.group_snapshot_id == found.id)
            member_ids = list(await session.exec(query))
            await session.exec(
                update(Snapshot)
                .where(col(Snapshot.group_snapshot_id) == found.id)
                .values(group_snapshot_id=None, updated_at=utcnow())
            )
            await session.exec(delete(GroupSnapshot).where(col(GroupSnapshot.id) == found.id))
        for snapshot_id in member_ids:
            await self._snapshots.delete(ctx, snapshot_id, forced=True)

    async def reset_status(self, ctx: RequestContext, group_snapshot_id: str, status: str) -> None:
        """An admin's status, shown from now on instead of the snapshots'."""
        async with self._db.session() as session:
            found = await find_group_snapshot(session, ctx, group_snapshot_id)
            authorize(ctx, "group:reset_group_snapshot_status", {"project_id": found.project_id})
            await session.exec(
                update(GroupSnapshot)
                .where(col(GroupSnapshot.id) == found.id)
                .values(status=status, status_from_snapshots=False, updated_at=utcnow())
            )
