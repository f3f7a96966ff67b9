"""The transfer repository: a volume offered to another project, and its hand-over.

As in ``cindermesh.db.volumes``, every state change is a conditional UPDATE on the state the
change expects, so two requests racing on one transfer cannot both win:

* :func:`offer` -- the volume ``available`` -> ``awaiting-transfer`` and the transfer row,
  together (Cinder's ``transfer_create``);
* :func:`withdraw` -- the transfer deleted and the volume back to ``available`` (Cinder's
  ``transfer_destroy``: the transfer goes even when the volume is no longer waiting);
  an accepted or deleted transfer's row goes (Cinder soft-deletes it and never shows it);
* :func:`hand_over` -- the accept, in the caller's one transaction: the transfer taken (it
  can be taken once), the volume ``awaiting-transfer`` -> ``available`` in the accepting
  project with the accepting user, its snapshots with it unless ``no_snapshots``, and the
  quota they count moved from the donor's usage to the acceptor's (reserved and committed at
  once, so the acceptor's limits apply and nothing is left reserved).

The auth key is never stored: Cinder's HMAC-SHA1 of it keyed by a random salt is
(:func:`crypt_hash`).

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.models import (
    Snapshot,
    SnapshotStatus,
    Transfer,
    Volume,
    VolumeStatus,
    VolumeType,
    utcnow,
)
from cindermesh.errors import InvalidSnapshot, InvalidVolume, NotFound
from cindermesh.settings import QuotaSettings

__all__ = [
    "AUTH_KEY_LENGTH",
    "SALT_LENGTH",
    "Acceptor",
    "crypt_hash",
    "hand_over",
    "offer",
    "random_hex",
    "transfer_not_found",
    "withdraw",
]

#: Cinder's ``volume_transfer_salt_length`` and ``volume_transfer_key_length``.
SALT_LENGTH = 8
AUTH_KEY_LENGTH = 16


@dataclass(frozen=True)
class Acceptor:
    """Who takes the volume."""

    project_id: str
    user_id: str


def transfer_not_found(transfer_id: str) -> NotFound:
    return NotFound(f"Transfer {transfer_id} could not be found.")


def random_hex(length: int) -> str:
    """Cinder's ``_get_random_string``: hexadecimal digits only, easy to type."""
    text = ""
    while len(text) < length:
        text += hashlib.sha224(os.urandom(255)).hexdigest()
    return text[:length]


def crypt_hash(salt: str, auth_key: str) -> str:
    """Cinder's ``_get_crypt_hash``."""
    return hmac.new(salt.encode(), auth_key.encode(), hashlib.sha1).hexdigest()


async def offer(
    session: AsyncSession,
    volume_id: str,
    name: str | None,
    no_snapshots: bool,
    source_project_id: str,
    auth_key: str,
) -> Transfer:
    """The transfer of an ``available`` volume, which now awaits it."""
    transfer = Transfer(
        volume_id=volume_id,
        display_name=name,
        salt=random_hex(SALT_LENGTH),
        crypt_hash="",
        no_snapshots=no_snapshots,
        source_project_id=source_project_id,
    )
    transfer.crypt_hash = crypt_hash(transfer.salt, auth_key)
    waiting = await _volume_status(
        session, volume_id, VolumeStatus.AVAILABLE, VolumeStatus.AWAITING_TRANSFER
    )
    if not waiting:
        raise InvalidVolume(
            f"Transfer {transfer.id}: Volume id {volume_id} expected in available state."
        )
    session.add(transfer)
    await session.flush()
    return transfer


async def withdraw(session: AsyncSession, transfer: Transfer) -> None:
    """The transfer deleted; its volume ``available`` again if it was waiting for it."""
    await _volume_status(
        session, transfer.volume_id, VolumeStatus.AWAITING_TRANSFER, VolumeStatus.AVAILABLE
    )
    if not await _close(session, transfer.id):
        raise transfer_not_found(transfer.id)


async def hand_over(
    session: AsyncSession,
    transfer: Transfer,
    acceptor: Acceptor,
    quotas: QuotaSettings,
) -> None:
    """The accept, whole or not at all (the caller's transaction rolls back on an error)."""
    if not await _close(session, transfer.id):
        raise transfer_not_found(transfer.id)  # accepted or deleted meanwhile
    volume = await session.get(Volume, transfer.volume_id, with_for_update=True)
    if volume is None:
        raise NotFound(f"Volume {transfer.volume_id} could not be found.")
    donor = volume.project_id
    type_name = await _type_name(session, volume.volume_type_id)
    moved = await session.exec(
        update(Volume)
        .where(
            col(Volume.id) == volume.id,
            col(Volume.status) == VolumeStatus.AWAITING_TRANSFER,
            col(Volume.project_id) == donor,
        )
        .values(
            status=VolumeStatus.AVAILABLE,
            project_id=acceptor.project_id,
            user_id=acceptor.user_id,
            updated_at=utcnow(),
        )
    )
    if int(moved.rowcount) != 1:
        raise InvalidVolume(
            f"Transfer {transfer.id}: Volume id {volume.id} expected in awaiting-transfer state."
        )
    deltas: dict[str, int] = {}
    if volume.quota_held:
        deltas = quota.volume_deltas(volume.size, type_name)
    if not transfer.no_snapshots:
        for snapshot in await _move_snapshots(session, transfer, donor, acceptor):
            if snapshot.quota_held:
                _add(deltas, quota.snapshot_deltas(snapshot.volume_size, type_name, quotas))
    await _move_quota(session, donor, acceptor.project_id, deltas, quotas)


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for resource, delta in more.items():
        total[resource] = total.get(resource, 0) + delta


async def _move_snapshots(
    session: AsyncSession, transfer: Transfer, donor: str, acceptor: Acceptor
) -> list[Snapshot]:
    """Every snapshot of the volume joins the acceptor; each must be ``available``."""
    query = select(Snapshot).where(Snapshot.volume_id == transfer.volume_id).with_for_update()
    snapshots = list(await session.exec(query))
    for snapshot in snapshots:
        moved = await session.exec(
            update(Snapshot)
            .where(
                col(Snapshot.id) == snapshot.id,
                col(Snapshot.status) == SnapshotStatus.AVAILABLE,
                col(Snapshot.project_id) == donor,
            )
            .values(project_id=acceptor.project_id, user_id=acceptor.user_id, updated_at=utcnow())
        )
        if int(moved.rowcount) != 1:
            raise InvalidSnapshot(
                f"Transfer {transfer.id}: Snapshot {snapshot.id} is not in the expected "
                "available state."
            )
    return snapshots


async def _move_quota(
    session: AsyncSession,
    donor: str,
    acceptor: str,
    deltas: Mapping[str, int],
    quotas: QuotaSettings,
) -> None:
    """The acceptor counts ``deltas`` (within its limits: Cinder's 413 otherwise), the donor
    no longer does."""
    if not deltas:
        return
    await quota.reserve(session, acceptor, deltas, quotas, durable=False)
    await quota.commit_deltas(session, acceptor, deltas)
    await quota.release(session, donor, deltas)


async def _volume_status(session: AsyncSession, volume_id: str, expected: str, status: str) -> bool:
    result = await session.exec(
        update(Volume)
        .where(col(Volume.id) == volume_id, col(Volume.status) == expected)
        .values(status=status, updated_at=utcnow())
    )
    return int(result.rowcount) == 1


async def _close(session: AsyncSession, transfer_id: str) -> bool:
    """The open transfer gone; False if it was no longer open (taken meanwhile)."""
    result = await session.exec(delete(Transfer).where(col(Transfer.id) == transfer_id))
    return int(result.rowcount) == 1


async def _type_name(session: AsyncSession, volume_type_id: str) -> str:
    name = (
        await session.exec(select(VolumeType.name).where(VolumeType.id == volume_type_id))
    ).first()
    return name or ""
