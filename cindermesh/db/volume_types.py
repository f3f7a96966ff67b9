"""What a volume type says, read by the api and the volume managers alike: its extra specs,
its encryption, its QoS specs.

Every function runs inside the caller's transaction (``Database.session()`` or ``read()``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.models import (
    QosSpecs,
    QosSpecsItem,
    VolumeType,
    VolumeTypeEncryption,
    VolumeTypeExtraSpec,
)

__all__ = ["Encryption", "encryption_of", "qos_of", "type_extra_specs"]

#: What an encryption is (provider, cipher, key size, control location).
Encryption = tuple[str, str | None, int | None, str]


async def type_extra_specs(session: AsyncSession, volume_type_id: str) -> dict[str, str]:
    rows = await session.exec(
        select(VolumeTypeExtraSpec).where(VolumeTypeExtraSpec.volume_type_id == volume_type_id)
    )
    return {row.key: row.value for row in rows}


async def encryption_of(session: AsyncSession, type_ids: Sequence[str]) -> dict[str, Encryption]:
    """The encryption of each of the types that has one."""
    query = select(VolumeTypeEncryption).where(
        col(VolumeTypeEncryption.volume_type_id).in_(type_ids)
    )
    return {
        row.volume_type_id: (row.provider, row.cipher, row.key_size, row.control_location)
        for row in await session.exec(query)
    }


async def qos_of(
    session: AsyncSession, volume_type: VolumeType | None
) -> tuple[str | None, dict[str, str | None]]:
    """The consumer and specs of the type's QoS specs; ``(None, {})`` without any."""
    if volume_type is None or volume_type.qos_specs_id is None:
        return None, {}
    qos = await session.get(QosSpecs, volume_type.qos_specs_id)
    if qos is None:
        return None, {}
    items = await session.exec(select(QosSpecsItem).where(QosSpecsItem.specs_id == qos.id))
    return qos.consumer, {item.key: item.value for item in items}
