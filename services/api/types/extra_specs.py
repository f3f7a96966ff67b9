"""A volume type's extra specs (Cinder's ``types_extra_specs`` resource).

Reading follows the type's visibility and shows other users than admins the user-visible keys
only; writing is for admins and refused while any volume is of the type ("Volume Type is
currently in use."), and ``cacheable`` cannot be set with ``multiattach``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeTypeExtraSpec
from cindermesh.db.volume_types import type_extra_specs
from cindermesh.errors import InvalidInput, NotFound
from services.api.edge.request_context import RequestContext
from services.api.policy import require_admin
from services.api.types.operations import find_type, type_in_use, visible_specs

__all__ = ["TypeExtraSpecs"]

_IS_TRUE = "<is> True"


def _spec_not_found(type_id: str, key: str) -> NotFound:
    return NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")


async def _refuse_in_use(session: AsyncSession, type_id: str) -> None:
    if await type_in_use(session, type_id):
        raise InvalidInput("Volume Type is currently in use.")


def _check_cacheable(new: Mapping[str, str], old: Mapping[str, str]) -> None:
    """Cinder's ``_check_cacheable``: the new keys against the stored ones and each other."""
    new_cacheable, new_multiattach = new.get("cacheable"), new.get("multiattach")
    if (
        (new_multiattach == _IS_TRUE and old.get("cacheable") == _IS_TRUE)
        or (new_cacheable == _IS_TRUE and old.get("multiattach") == _IS_TRUE)
        or (new_cacheable == _IS_TRUE and new_multiattach == _IS_TRUE)
    ):
        raise InvalidInput("cacheable cannot be set with multiattach.")


class TypeExtraSpecs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, ctx: RequestContext, type_id: str) -> dict[str, str]:
        async with self._db.read() as session:
            await find_type(session, ctx, type_id)
            return visible_specs(ctx, await type_extra_specs(session, type_id))

    async def get(self, ctx: RequestContext, type_id: str, key: str) -> str:
        specs = await self.list(ctx, type_id)
        if key not in specs:
            raise _spec_not_found(type_id, key)
        return specs[key]

    async def merge(
        self, ctx: RequestContext, type_id: str, specs: Mapping[str, str], *, rule: str
    ) -> None:
        """Creates or updates the given keys (POST, and PUT of one key: ``rule`` is its
        policy), in Cinder's order: policy, in use, the type."""
        require_admin(ctx, rule)
        async with self._db.session() as session:
            await _refuse_in_use(session, type_id)
            await find_type(session, ctx, type_id)
            stored = await type_extra_specs(session, type_id)
            _check_cacheable(specs, stored)
            for key, value in specs.items():
                await session.merge(
                    VolumeTypeExtraSpec(volume_type_id=type_id, key=key, value=value)
                )

    async def check_type_for_update(self, ctx: RequestContext, type_id: str) -> None:
        """The steps of Cinder's PUT before its body-and-URI check: policy, in use, the type."""
        require_admin(ctx, "volume_extension:types_extra_specs:update")
        async with self._db.read() as session:
            await _refuse_in_use(session, type_id)
            await find_type(session, ctx, type_id)

    async def delete(self, ctx: RequestContext, type_id: str, key: str) -> None:
        """Cinder's order: the type, policy, in use, the key."""
        async with self._db.session() as session:
            await find_type(session, ctx, type_id)
            require_admin(ctx, "volume_extension:types_extra_specs:delete")
            await _refuse_in_use(session, type_id)
            if key not in await type_extra_specs(session, type_id):
                raise _spec_not_found(type_id, key)
            await session.exec(
                delete(VolumeTypeExtraSpec).where(
                    col(VolumeTypeExtraSpec.volume_type_id) == type_id,
                    col(VolumeTypeExtraSpec.key) == key,
                )
            )
