"""Private volume types' access (Cinder's ``volume_type_access`` extension): the projects a
private type is shared with, listed, added and removed by admins; a public type has no list
and cannot be changed."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeTypeProject
from cindermesh.errors import Conflict, InvalidInput, NotFound
from services.api.edge.request_context import RequestContext
from services.api.policy import require_admin
from services.api.types.body import ADD_PROJECT_ACCESS, TypeActionInput
from services.api.types.operations import find_type

__all__ = ["TypeAccessOperations"]

_PUBLIC = "Invalid volume type: Type access modification is not applicable to public volume type."


class TypeAccessOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, ctx: RequestContext, type_id: str) -> list[str]:
        """The projects, in the order they were given access."""
        require_admin(ctx, "volume_extension:volume_type_access:get_all_for_type")
        async with self._db.read() as session:
            volume_type = await find_type(session, ctx, type_id)
            if volume_type.is_public:
                raise NotFound("Access list not available for public volume types.")
            rows = await session.exec(
                select(VolumeTypeProject.project_id)
                .where(VolumeTypeProject.volume_type_id == type_id)
                .order_by(col(VolumeTypeProject.project_id))
            )
            return list(rows)

    async def apply(self, ctx: RequestContext, type_id: str, action: TypeActionInput) -> None:
        adding = action.action == ADD_PROJECT_ACCESS
        require_admin(
            ctx,
            "volume_extension:volume_type_access:addProjectAccess"
            if adding
            else "volume_extension:volume_type_access:removeProjectAccess",
        )
        combination = f"{type_id} / {action.project} combination"
        exists = Conflict(f"Volume type access for {combination} already exists.")
        try:
            async with self._db.session() as session:
                if (await find_type(session, ctx, type_id)).is_public:
                    raise InvalidInput(_PUBLIC)
                shared = (
                    await session.exec(
                        select(VolumeTypeProject).where(
                            VolumeTypeProject.volume_type_id == type_id,
                            VolumeTypeProject.project_id == action.project,
                        )
                    )
                ).first()
                if adding:
                    if shared is not None:
                        raise exists
                    session.add(
                        VolumeTypeProject(volume_type_id=type_id, project_id=action.project)
                    )
                    await session.flush()
                    return
                if shared is None:
                    raise NotFound(f"Volume type access not found for {combination}.")
                await session.exec(
                    delete(VolumeTypeProject).where(
                        col(VolumeTypeProject.volume_type_id) == type_id,
                        col(VolumeTypeProject.project_id) == action.project,
                    )
                )
        except IntegrityError as error:  # a concurrent add of the same project
            raise exists from error
