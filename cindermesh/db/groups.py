"""The group repository: every write of a generic group's state and membership.

As in ``cindermesh.db.volumes``, a status change is one conditional UPDATE on the state it
expects, and the ``groups`` quota a group counts is given back by :func:`give_back_quota`
only, at most once (``Group.quota_held``). A group needs no backend work of its own (Cinder's
generic groups, which drivers without group support implement as "nothing to do"): it is
``available`` as soon as its row is written, and its volumes and snapshots are made and
deleted as any other.

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.models import Group, GroupStatus, GroupVolumeTypeMapping, Volume, utcnow
from cindermesh.errors import QuotaExceeded
from cindermesh.settings import QuotaSettings

__all__ = [
    "add",
    "destroy",
    "give_back_quota",
    "join",
    "leave",
    "lets_go",
    "set_status",
    "volume_type_ids",
]

GROUP_DELTAS = {"groups": 1}


async def add(
    session: AsyncSession, group: Group, volume_type_ids: Sequence[str], quotas: QuotaSettings
) -> None:
    """The new group, counted against its project's ``groups`` quota (Cinder's 413
    ``Maximum number of groups allowed (<n>) exceeded`` otherwise), with its volume types in
    the order given."""
    try:
        await quota.reserve(session, group.project_id, GROUP_DELTAS, quotas, durable=False)
    except QuotaExceeded:
        limits = await quota.limits_for(session, group.project_id, quotas, ["groups"])
        raise QuotaExceeded(
            f"Maximum number of groups allowed ({limits['groups']}) exceeded"
        ) from None
    await quota.commit_deltas(session, group.project_id, GROUP_DELTAS)
    session.add(group)
    await session.flush()
    session.add_all(
        GroupVolumeTypeMapping(group_id=group.id, volume_type_id=type_id, position=index)
        for index, type_id in enumerate(volume_type_ids)
    )


async def volume_type_ids(session: AsyncSession, group_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each group's volume types, in the order they were given."""
    ids = list(group_ids)
    found: dict[str, list[str]] = {i: [] for i in ids}
    query = (
        select(GroupVolumeTypeMapping)
        .where(col(GroupVolumeTypeMapping.group_id).in_(ids))
        .order_by(col(GroupVolumeTypeMapping.position))
    )
    for row in await session.exec(query):
        found[row.group_id].append(row.volume_type_id)
    return found


async def set_status(
    session: AsyncSession, group_id: str, status: str, expected: Sequence[str] | None = None
) -> bool:
    """The group's status (if it is one of ``expected``, when given); whether it was."""
    query = update(Group).where(col(Group.id) == group_id)
    if expected is not None:
        query = query.where(col(Group.status).in_(expected))
    result = await session.exec(query.values(status=status, updated_at=utcnow()))
    return int(result.rowcount) == 1


async def join(session: AsyncSession, group_id: str, volume_ids: Sequence[str]) -> bool:
    """The volumes (in no group) join the group; whether all of them did."""
    result = await session.exec(
        update(Volume)
        .where(col(Volume.id).in_(volume_ids), col(Volume.group_id).is_(None))
        .values(group_id=group_id, updated_at=utcnow())
    )
    return int(result.rowcount) == len(volume_ids)


async def leave(session: AsyncSession, group_id: str, volume_ids: Sequence[str]) -> bool:
    """The volumes (of the group) leave it; whether all of them did."""
    result = await session.exec(
        update(Volume)
        .where(col(Volume.id).in_(volume_ids), col(Volume.group_id) == group_id)
        .values(group_id=None, updated_at=utcnow())
    )
    return int(result.rowcount) == len(volume_ids)


async def lets_go(session: AsyncSession, volume: Volume) -> bool:
    """Whether a volume delete may take the volume: it is in no group, or its group is being
    deleted (Cinder refuses to delete a volume of a group otherwise)."""
    if volume.group_id is None:
        return True
    status = (await session.exec(select(Group.status).where(Group.id == volume.group_id))).first()
    return status is None or status == GroupStatus.DELETING


async def give_back_quota(session: AsyncSession, group_id: str) -> bool:
    """Gives the group's ``groups`` quota back if it still holds it; the one place it is."""
    cleared = update(Group).where(col(Group.id) == group_id, col(Group.quota_held).is_(True))
    result = await session.exec(cleared.values(quota_held=False))
    if int(result.rowcount) != 1:
        return False
    project_id = (await session.exec(select(Group.project_id).where(Group.id == group_id))).one()
    await quota.release(session, project_id, GROUP_DELTAS)
    return True


async def destroy(session: AsyncSession, group_id: str) -> bool:
    """A ``deleting`` group's quota given back and its rows removed; whether it was there."""
    if not await set_status(session, group_id, GroupStatus.DELETING, [GroupStatus.DELETING]):
        return False
    await give_back_quota(session, group_id)
    await session.exec(
        delete(GroupVolumeTypeMapping).where(col(GroupVolumeTypeMapping.group_id) == group_id)
    )
    await session.exec(delete(Group).where(col(Group.id) == group_id))
    return True
