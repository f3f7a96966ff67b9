"""Generic groups: Cinder's ``groups`` controller and ``cinder/group/api.py`` (create, show,
lists, update with add/remove volumes, delete with its volumes, reset status) over
``cindermesh.db.groups``.

The order of the checks is Cinder's: the body's schema, then the look-ups (a group is its
project's, or any for an admin: 404 otherwise), then the policy with the group as target,
then the states. A group's volumes are deleted through the volume delete path
(``VolumeOperations.delete_marked``), each as a volume delete is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import groups
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    AttachStatus,
    Group,
    GroupSnapshot,
    GroupStatus,
    Snapshot,
    Volume,
    utcnow,
)
from cindermesh.errors import CindermeshError, InvalidInput
from cindermesh.settings import Settings
from cindermesh_pb.api.v1 import group_service_pb2 as pb
from services.api.edge.request_context import RequestContext
from services.api.groups.body import GroupCreateInput, GroupUpdateInput
from services.api.groups.membership import find_group, invalid_group
from services.api.groups.types import find_group_type
from services.api.groups.views import GroupRecord
from services.api.policy import authorize
from services.api.schema import is_true, validate_integer
from services.api.volumes.listing import (
    ListPage,
    ListQuery,
    ListTable,
    list_page,
    parse_limit,
    parse_sort,
)
from services.api.volumes.lookups import find_volume_type, known_availability_zones
from services.api.volumes.operations import VolumeOperations

__all__ = ["GROUPS", "GroupOperations", "parse_group_query"]

log = logging.getLogger(__name__)

#: Cinder's ``VALID_ADD_VOL_TO_GROUP_STATUS`` and ``VALID_REMOVE_VOL_FROM_GROUP_STATUS``.
ADD_STATUSES = ("available", "in-use")
REMOVE_STATUSES = ("available", "in-use", "error", "error_deleting")

_COLUMNS = {
    "id": Group.id,
    "name": Group.name,
    "status": Group.status,
    "availability_zone": Group.availability_zone,
    "group_type_id": Group.group_type_id,
    "created_at": Group.created_at,
    "updated_at": Group.updated_at,
    "project_id": Group.project_id,
}
GROUPS = ListTable(
    model=Group,
    columns=_COLUMNS,
    metadata_owner=None,
    metadata_key=None,
    metadata_value=None,
    kind="Group",
)


def _invalid_volume(reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid volume: {reason}")


async def _member_ids(session: AsyncSession, group_id: str) -> list[str]:
    query = select(Volume.id).where(Volume.group_id == group_id).order_by(col(Volume.created_at))
    return list(await session.exec(query))


def parse_group_query(ctx: RequestContext, request: pb.ListGroupsRequest) -> ListQuery:
    filters = {
        name: getattr(request, name) for name in ("name", "status") if request.HasField(name)
    }
    return ListQuery(
        limit=parse_limit(request.limit) if request.HasField("limit") else None,
        marker=request.marker if request.HasField("marker") else None,
        offset=validate_integer("offset", request.offset, 0) if request.HasField("offset") else 0,
        sort=parse_sort(request, _COLUMNS),
        all_tenants=(
            ctx.caller.is_admin and request.HasField("all_tenants") and is_true(request.all_tenants)
        ),
        filters=filters,
    )


class GroupOperations:
    def __init__(self, db: Database, settings: Settings, volumes: VolumeOperations) -> None:
        self._db = db
        self._settings = settings
        self._volumes = volumes

    async def create(self, ctx: RequestContext, given: GroupCreateInput) -> Group:
        """The group, ``available`` at once (a generic group needs no backend work)."""
        async with self._db.session() as session:
            group_type = await find_group_type(session, ctx, given.group_type)
            authorize(ctx, "group:create")
            volume_types = [
                await find_volume_type(session, ctx, name) for name in given.volume_types
            ]
            zone = given.availability_zone or self._settings.api.default_availability_zone
            if zone not in await known_availability_zones(session, self._settings):
                raise InvalidInput(
                    f"Invalid input received: Availability zone '{zone}' is invalid."
                )
            group = Group(
                project_id=ctx.project_id,
                user_id=ctx.caller.user_id,
                name=given.name,
                description=given.description,
                status=GroupStatus.AVAILABLE,
                availability_zone=zone,
                group_type_id=group_type.id,
            )
            type_ids = list(dict.fromkeys(t.id for t in volume_types))
            await groups.add(session, group, type_ids, self._settings.quotas)
            return group

    async def get(self, ctx: RequestContext, group_id: str, list_volume: bool) -> GroupRecord:
        async with self._db.read() as session:
            group = await find_group(session, ctx, group_id)
            return (await _records(session, [group], list_volume))[0]

    async def list(
        self, ctx: RequestContext, query: ListQuery, detail: bool, list_volume: bool
    ) -> tuple[ListPage[Group], list[GroupRecord]]:
        async with self._db.read() as session:
            page = await list_page(session, ctx, query, GROUPS)
            records = await _records(session, page.rows, list_volume) if detail else []
            return page, records

    async def update(self, ctx: RequestContext, group_id: str, change: GroupUpdateInput) -> None:
        """Cinder's ``update``: name and description at once; the volumes to add and remove
        are checked all first, then join and leave in the same transaction."""
        async with self._db.session() as session:
            group = await find_group(session, ctx, group_id)
            authorize(ctx, "group:update", {"project_id": group.project_id})
            name = None if change.name == group.name else change.name
            description = None if change.description == group.description else change.description
            both = [v for v in change.add_volumes if v in change.remove_volumes]
            if both:
                raise _invalid_volume(f"UUIDs {both} are in both add and remove volume list.")
            members = await session.exec(select(Volume).where(Volume.group_id == group.id))
            current = list(members)
            adding = await _to_add(session, group, current, change.add_volumes)
            removing = _to_remove(group, current, change.remove_volumes)
            if name is None and description is None and not adding and not removing:
                raise invalid_group(
                    f"Cannot update group {group.id} because no valid name, description, "
                    "add_volumes, or remove_volumes were provided."
                )
            if (adding or removing) and group.status != GroupStatus.AVAILABLE:
                raise invalid_group("Group status must be available.")
            if name is not None:
                group.name = name
            if description is not None:
                group.description = description
            group.status = GroupStatus.AVAILABLE
            group.updated_at = utcnow()
            session.add(group)
            if adding and not await groups.join(session, group.id, adding):
                raise invalid_group("Group status must be available.")  # changed meanwhile
            if removing and not await groups.leave(session, group.id, removing):
                raise invalid_group("Group status must be available.")

    async def delete(self, ctx: RequestContext, group_id: str, delete_volumes: bool) -> None:
        """The group ``deleting``, each of its volumes deleted as a volume delete does, then the
        group's rows and its quota go. A volume that cannot go leaves the group in
        ``error_deleting``."""
        async with self._db.session() as session:
            group = await find_group(session, ctx, group_id)
            authorize(ctx, "group:delete", {"project_id": group.project_id})
            await _check_deletable(session, group, delete_volumes)
            expected = None if delete_volumes else (GroupStatus.AVAILABLE, GroupStatus.ERROR)
            if not await groups.set_status(session, group.id, GroupStatus.DELETING, expected):
                raise invalid_group(
                    f"Cannot delete group {group.id}. Group must not have attached volumes, "
                    "volumes with snapshots, or dependent group snapshots, and it cannot be the "
                    "source for an ongoing group or group snapshot creation."
                )
            member_ids = await _member_ids(session, group.id)
        for volume_id in member_ids:
            try:
                await self._volumes.delete_marked(ctx, volume_id, forced=False)
            except CindermeshError as error:
                log.warning("group %s: volume %s not deleted: %s", group_id, volume_id, error)
                async with self._db.session() as session:
                    await groups.set_status(
                        session, group_id, GroupStatus.ERROR_DELETING, [GroupStatus.DELETING]
                    )
                return
        async with self._db.session() as session:
            await groups.destroy(session, group_id)

    async def reset_status(self, ctx: RequestContext, group_id: str, status: str) -> None:
        async with self._db.session() as session:
            group = await find_group(session, ctx, group_id)
            authorize(ctx, "group:reset_status", {"project_id": group.project_id})
            await groups.set_status(session, group.id, status)


async def _records(
    session: AsyncSession, found: Sequence[Group], list_volume: bool
) -> list[GroupRecord]:
    type_ids = await groups.volume_type_ids(session, [g.id for g in found])
    records = []
    for group in found:
        volume_ids = await _member_ids(session, group.id) if list_volume else None
        records.append(GroupRecord(group, type_ids[group.id], volume_ids))
    return records


async def _check_deletable(session: AsyncSession, group: Group, delete_volumes: bool) -> None:
    """Cinder's refusals of a group delete, in its order."""
    if not delete_volumes and group.status not in (GroupStatus.AVAILABLE, GroupStatus.ERROR):
        raise invalid_group(
            f"Group status must be available or error, but current status is: {group.status}"
        )
    snapshots = await session.exec(
        select(GroupSnapshot.id).where(GroupSnapshot.group_id == group.id)
    )
    if snapshots.first() is not None:
        raise invalid_group("Group has existing snapshots.")
    volumes = list(await session.exec(select(Volume).where(Volume.group_id == group.id)))
    if volumes and not delete_volumes:
        raise invalid_group(
            f"Group {group.id} still contains volumes. The delete-volumes flag is required to "
            "delete it."
        )
    for volume in volumes:
        if volume.attach_status == AttachStatus.ATTACHED:
            raise invalid_group(f"Volume in group {group.id} is attached. Need to detach first.")
        has_snapshots = await session.exec(
            select(Snapshot.id).where(Snapshot.volume_id == volume.id)
        )
        if has_snapshots.first() is not None:
            raise invalid_group("Volume in group still has dependent snapshots.")


def _to_remove(group: Group, current: Sequence[Volume], wanted: Sequence[str]) -> list[str]:
    """Cinder's ``_validate_remove_volumes``."""
    removing = []
    for volume in current:
        if volume.id in wanted:
            if volume.status not in REMOVE_STATUSES:
                raise _invalid_volume(
                    f"Cannot remove volume {volume.id} from group {group.id} because volume is "
                    f"in an invalid state: {volume.status}. Valid states are: {REMOVE_STATUSES}."
                )
            removing.append(volume.id)
    for volume_id in wanted:
        if volume_id not in removing:
            raise _invalid_volume(
                f"Cannot remove volume {volume_id} from group {group.id} because it is not in "
                "the group."
            )
    return removing


async def _to_add(
    session: AsyncSession, group: Group, current: Sequence[Volume], wanted: Sequence[str]
) -> list[str]:
    """Cinder's ``_validate_add_volumes``."""
    members = {v.id for v in current}
    type_ids = (await groups.volume_type_ids(session, [group.id]))[group.id]
    adding: list[str] = []
    for volume_id in (v for v in wanted if v not in members):
        volume = await session.get(Volume, volume_id)
        prefix = f"Cannot add volume {volume_id} to group {group.id}"
        if volume is None:
            raise _invalid_volume(f"{prefix} because volume cannot be found.")
        if volume.group_id:
            raise _invalid_volume(f"{prefix} because it is already in group {volume.group_id}.")
        if volume.project_id != group.project_id:
            raise _invalid_volume(f"{prefix} as they belong to different projects.")
        if volume.volume_type_id not in type_ids:
            raise _invalid_volume(
                f"{prefix} because volume type {volume.volume_type_id} is not supported by the "
                "group."
            )
        if volume.status not in ADD_STATUSES:
            raise _invalid_volume(
                f"{prefix} because volume is in an invalid state: {volume.status}. Valid "
                f"states are: {ADD_STATUSES}."
            )
        adding.append(volume.id)
    return adding
