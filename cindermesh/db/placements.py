"""A volume's placement attempts (``volume_placements``): what the scheduler decided for each
(``cindermesh.placement.PlacementAttempt``), kept with the volume for
``GET /v3/{project_id}/volumes/{volume_id}/placement``.

The scheduler calls :func:`record` in its own placement transaction, the one that writes the
chosen host on the volume or puts the volume in ``error``, so that a decision is kept exactly
when its outcome is. Only the last :data:`KEPT_ATTEMPTS` attempts of a volume are kept (Cinder
makes 3 by default; a volume placed again and again must not grow the table). The rows go with
their volume (``volumes.destroy``; the foreign key cascades too).
"""

from __future__ import annotations

import logging

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.models import VolumePlacement, utcnow
from cindermesh.placement import PlacementAttempt, from_json, to_json

__all__ = ["KEPT_ATTEMPTS", "attempts_of", "forget", "record"]

log = logging.getLogger(__name__)

#: Attempts kept per volume, the newest ones.
KEPT_ATTEMPTS = 10


async def record(session: AsyncSession, volume_id: str, attempt: PlacementAttempt) -> None:
    """Adds ``attempt`` to the volume's (committed with the caller's transaction) and drops
    the oldest beyond :data:`KEPT_ATTEMPTS`."""
    session.add(
        VolumePlacement(
            volume_id=volume_id,
            attempt=attempt.attempt,
            created_at=utcnow(),
            decision=to_json(attempt),
        )
    )
    if attempt.attempt <= KEPT_ATTEMPTS:
        return  # one row per attempt: a volume has at most as many as its attempt number
    await session.flush()
    older = (
        select(VolumePlacement.id)
        .where(col(VolumePlacement.volume_id) == volume_id)
        .order_by(col(VolumePlacement.id).desc())
        .offset(KEPT_ATTEMPTS)
    )
    stale = list(await session.exec(older))
    if stale:
        await session.exec(delete(VolumePlacement).where(col(VolumePlacement.id).in_(stale)))


async def attempts_of(session: AsyncSession, volume_id: str) -> list[PlacementAttempt]:
    """The volume's kept attempts, oldest first (a row that does not read is skipped)."""
    query = (
        select(VolumePlacement)
        .where(col(VolumePlacement.volume_id) == volume_id)
        .order_by(col(VolumePlacement.id))
    )
    attempts: list[PlacementAttempt] = []
    for row in await session.exec(query):
        try:
            attempts.append(from_json(row.decision))
        except ValueError as error:
            log.warning("volume %s: placement %s unreadable: %s", volume_id, row.id, error)
    return attempts


async def forget(session: AsyncSession, volume_id: str) -> None:
    """Deletes the volume's attempts (with the volume)."""
    await session.exec(delete(VolumePlacement).where(col(VolumePlacement.volume_id) == volume_id))
