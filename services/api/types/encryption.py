"""A volume type's encryption (Cinder's ``volume_type_encryption`` extension), for admins.

At most one per type; created, changed and deleted only while no volume is of the type. The
create and update answers echo the body as sent (``key_size`` as an integer), the create's
with the ``volume_type_id`` and ``encryption_id``; a type without encryption shows ``{}``.
"""

from __future__ import annotations

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeTypeEncryption, utcnow
from cindermesh.errors import InvalidInput, NotFound
from services.api.edge.request_context import RequestContext
from services.api.policy import require_admin
from services.api.schema import JsonValue
from services.api.types.body import EncryptionInput
from services.api.types.operations import find_type, type_in_use
from services.api.view_values import format_time

__all__ = ["ENCRYPTION_FIELDS", "TypeEncryptionOperations", "encryption_fields"]

#: The fields a request may set (Cinder stores no other).
ENCRYPTION_FIELDS = ("provider", "control_location", "cipher", "key_size")


def encryption_fields(encryption: VolumeTypeEncryption) -> dict[str, JsonValue]:
    """The row as Cinder shows it, with its soft-delete columns (never deleted here)."""
    updated = encryption.updated_at
    return {
        "volume_type_id": encryption.volume_type_id,
        "encryption_id": encryption.encryption_id,
        "key_size": encryption.key_size,
        "provider": encryption.provider,
        "control_location": encryption.control_location,
        "cipher": encryption.cipher,
        "deleted": False,
        "created_at": format_time(encryption.created_at),
        "updated_at": format_time(updated) if updated is not None else None,
        "deleted_at": None,
    }


def _not_found(type_id: str) -> NotFound:
    return NotFound(f"Volume type encryption for type {type_id} does not exist.")


async def _encryption(session: AsyncSession, type_id: str) -> VolumeTypeEncryption | None:
    query = select(VolumeTypeEncryption).where(VolumeTypeEncryption.volume_type_id == type_id)
    return (await session.exec(query)).first()


async def _refuse_in_use(session: AsyncSession, type_id: str, verb: str) -> None:
    if await type_in_use(session, type_id):
        raise InvalidInput(f"Cannot {verb} encryption specs. Volume type in use.")


class TypeEncryptionOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, ctx: RequestContext, type_id: str) -> VolumeTypeEncryption | None:
        require_admin(ctx, "volume_extension:volume_type_encryption:get")
        async with self._db.read() as session:
            await find_type(session, ctx, type_id)
            return await _encryption(session, type_id)

    async def get_item(self, ctx: RequestContext, type_id: str, key: str) -> JsonValue:
        """One field of the encryption's row (Cinder shows any of its columns)."""
        encryption = await self.get(ctx, type_id)
        fields = encryption_fields(encryption) if encryption is not None else {}
        if key not in fields:
            raise _not_found(type_id)
        return fields[key]

    async def create(
        self, ctx: RequestContext, type_id: str, request: EncryptionInput
    ) -> dict[str, JsonValue]:
        require_admin(ctx, "volume_extension:volume_type_encryption:create")
        async with self._db.session() as session:
            await _refuse_in_use(session, type_id, "create")
            await find_type(session, ctx, type_id)
            if await _encryption(session, type_id) is not None:
                raise InvalidInput(f"Volume type encryption for type {type_id} already exists.")
            encryption = VolumeTypeEncryption.model_validate(
                {k: v for k, v in request.fields.items() if k in ENCRYPTION_FIELDS}
                | {"volume_type_id": type_id}
            )
            session.add(encryption)
            await session.flush()
            return {
                **request.fields,
                "volume_type_id": type_id,
                "encryption_id": encryption.encryption_id,
            }

    async def update(
        self, ctx: RequestContext, type_id: str, request: EncryptionInput
    ) -> dict[str, JsonValue]:
        require_admin(ctx, "volume_extension:volume_type_encryption:update")
        async with self._db.session() as session:
            await find_type(session, ctx, type_id)
            await _refuse_in_use(session, type_id, "update")
            encryption = await _encryption(session, type_id)
            if encryption is None:
                raise _not_found(type_id)
            for key, value in request.fields.items():
                if key in ENCRYPTION_FIELDS:
                    setattr(encryption, key, value)
            encryption.updated_at = utcnow()
            session.add(encryption)
            return dict(request.fields)

    async def delete(self, ctx: RequestContext, type_id: str) -> None:
        """As Cinder: no look-up of the type, only of its encryption."""
        require_admin(ctx, "volume_extension:volume_type_encryption:delete")
        async with self._db.session() as session:
            await _refuse_in_use(session, type_id, "delete")
            if await _encryption(session, type_id) is None:
                raise _not_found(type_id)
            await session.exec(
                delete(VolumeTypeEncryption).where(
                    col(VolumeTypeEncryption.volume_type_id) == type_id
                )
            )
