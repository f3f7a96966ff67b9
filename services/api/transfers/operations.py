"""Volume transfers: Cinder's ``cinder/transfer/api.py`` over ``cindermesh.db.transfers``.

The order of the checks is Cinder's: the body's schema, then the look-ups and the policy
(create and delete authorize against the volume's project, once they found it), then the
states. A transfer is visible to its volume's project (and to admins); any project may
accept one it knows the id and the key of.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota, transfers
from cindermesh.db.engine import Database
from cindermesh.db.models import Snapshot, SnapshotStatus, Transfer, Volume, VolumeStatus
from cindermesh.errors import InvalidInput, InvalidSnapshot, InvalidVolume, NotFound, QuotaExceeded
from cindermesh.settings import QuotaSettings
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.transfers.body import TransferCreateInput
from services.api.transfers.listing import TRANSFERS
from services.api.volumes.listing import ListPage, ListQuery, list_page
from services.api.volumes.lookups import find_volume

__all__ = ["CreatedTransfer", "TransferOperations"]

RULE = "volume:{}_transfer"


@dataclass(frozen=True)
class CreatedTransfer:
    transfer: Transfer
    #: Shown in the create answer only; never stored.
    auth_key: str


async def _find(session: AsyncSession, ctx: RequestContext, transfer_id: str) -> Transfer:
    """The open transfer if the caller may see it (its volume's project's, or any for an
    admin), else Cinder's 404."""
    query = select(Transfer).where(Transfer.id == transfer_id)
    if not ctx.caller.is_admin:
        query = query.where(Transfer.source_project_id == ctx.project_id)
    found = (await session.exec(query)).first()
    if found is None:
        raise transfers.transfer_not_found(transfer_id)
    return found


def _without_prefix(error: QuotaExceeded) -> QuotaExceeded:
    """The transfer API shows the quota error's own text (``error.msg``), without the
    exception name that the create flow's answer carries."""
    return QuotaExceeded(error.message.partition(": ")[2] or error.message)


class TransferOperations:
    """The operations behind TransferService; the servicer only converts to and from protos."""

    def __init__(self, db: Database, quotas: QuotaSettings) -> None:
        self._db = db
        self._quotas = quotas

    async def get(self, ctx: RequestContext, transfer_id: str) -> Transfer:
        async with self._db.read() as session:
            return await _find(session, ctx, transfer_id)

    async def list(self, ctx: RequestContext, query: ListQuery) -> ListPage[Transfer]:
        async with self._db.read() as session:
            return await list_page(session, ctx, query, TRANSFERS)

    async def create(self, ctx: RequestContext, given: TransferCreateInput) -> CreatedTransfer:
        """The volume (``available``, and its snapshots too unless ``no_snapshots``) awaits
        the new transfer."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, given.volume_id)
            authorize(ctx, RULE.format("create"), {"project_id": volume.project_id})
            if volume.status != VolumeStatus.AVAILABLE:
                raise InvalidVolume("status must be available")
            if not given.no_snapshots:
                await _check_snapshots_available(session, volume.id)
            auth_key = transfers.random_hex(transfers.AUTH_KEY_LENGTH)
            transfer = await transfers.offer(
                session,
                volume.id,
                given.name,
                given.no_snapshots,
                volume.project_id,
                auth_key,
            )
            return CreatedTransfer(transfer=transfer, auth_key=auth_key)

    async def accept(self, ctx: RequestContext, transfer_id: str, auth_key: str) -> Transfer:
        """The volume and the quota it counts move to the caller's project, at once."""
        authorize(ctx, RULE.format("accept"))
        async with self._db.session() as session:
            transfer = await session.get(Transfer, transfer_id)
            if transfer is None:
                raise transfers.transfer_not_found(transfer_id)
            if transfers.crypt_hash(transfer.salt, auth_key) != transfer.crypt_hash:
                raise InvalidInput(
                    f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key."
                )
            volume = await session.get(Volume, transfer.volume_id)
            if volume is None:
                raise NotFound(f"Volume {transfer.volume_id} could not be found.")
            await self._check_size_limit(session, ctx.project_id, volume.size)
            acceptor = transfers.Acceptor(project_id=ctx.project_id, user_id=ctx.caller.user_id)
            try:
                await transfers.hand_over(session, transfer, acceptor, self._quotas)
            except QuotaExceeded as error:
                raise _without_prefix(error) from None
            return transfer

    async def delete(self, ctx: RequestContext, transfer_id: str) -> None:
        """The transfer goes; its volume is ``available`` again."""
        async with self._db.session() as session:
            transfer = await _find(session, ctx, transfer_id)
            volume = await find_volume(session, ctx, transfer.volume_id)
            authorize(ctx, RULE.format("delete"), {"project_id": volume.project_id})
            await transfers.withdraw(session, transfer)

    async def _check_size_limit(self, session: AsyncSession, project_id: str, size: int) -> None:
        """Cinder's ``per_volume_gigabytes`` check of the accepting project."""
        limits = await quota.limits_for(session, project_id, self._quotas)
        per_volume = limits.get("per_volume_gigabytes", quota.UNLIMITED)
        if per_volume != quota.UNLIMITED and size > per_volume:
            raise QuotaExceeded(
                f"Requested volume size {size}G is larger than maximum allowed limit {per_volume}G."
            )


async def _check_snapshots_available(session: AsyncSession, volume_id: str) -> None:
    query = (
        select(Snapshot.id)
        .where(Snapshot.volume_id == volume_id, Snapshot.status != SnapshotStatus.AVAILABLE)
        .order_by(col(Snapshot.created_at))
    )
    busy = (await session.exec(query)).first()
    if busy is not None:
        raise InvalidSnapshot(f"snapshot: {busy} status must be available")
