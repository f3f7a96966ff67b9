"""A group's look-up and the rule a volume created in it follows (Cinder's volume API create
with a ``group_id``), for the groups API and the volume create flow alike."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import groups
from cindermesh.db.models import Group, GroupStatus, VolumeType
from cindermesh.errors import InvalidInput, NotFound
from services.api.edge.request_context import RequestContext
from services.api.schema import invalid_input

__all__ = ["GROUP_PROCEED_STATUSES", "check_group_accepts", "find_group", "invalid_group"]

#: Cinder's ``GROUP_PROCEED_STATUS``: the statuses a group takes new volumes in.
GROUP_PROCEED_STATUSES = (GroupStatus.AVAILABLE, GroupStatus.CREATING)


def invalid_group(reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid Group: {reason}")


async def find_group(session: AsyncSession, ctx: RequestContext, group_id: str) -> Group:
    """The group if the caller may see it (its project's, or any for an admin)."""
    query = select(Group).where(Group.id == group_id)
    if not ctx.caller.is_admin:
        query = query.where(Group.project_id == ctx.project_id)
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound(f"Group {group_id} could not be found.")
    return found


async def check_group_accepts(session: AsyncSession, group: Group, volume_type: VolumeType) -> None:
    """The volume's type must be one of the group's, and the group must take volumes."""
    type_ids = (await groups.volume_type_ids(session, [group.id]))[group.id]
    if volume_type.id not in type_ids:
        raise invalid_input(
            f"Invalid volume_type provided: {volume_type.name} (requested type must be "
            "supported by this group)."
        )
    if group.status not in GROUP_PROCEED_STATUSES:
        raise invalid_group(
            f"Originating group status must be one of '{', '.join(GROUP_PROCEED_STATUSES)}' values"
        )
