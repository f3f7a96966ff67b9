"""Capacity claimed in the database, so that every scheduler replica sees it at once.

A volume claims its pool's capacity by having the pool as its ``host``: from the moment a
scheduler records the placement (:func:`claim`) until the volume is deleted, goes to ``error``,
or is taken back for another attempt (its ``host`` cleared). Nothing is counted in memory, so
nothing has to be given back by hand and nothing leaks when a scheduler dies: the rows are
the record, and every replica reads the same rows.

How a pool's numbers are built (Cinder's ``consume_from_volume``, applied to what the report
does not show yet): the claims the last report does not include yet, ``max(0, claimed -
reported allocated)``, are added to the allocated and provisioned capacities and taken off the
free capacity (an unbounded free stays as it is). A report that already counts every claimed
volume leaves the pool as reported. No clock is compared with another process's.

No over-commit with N replicas: :func:`claim` re-checks the chosen pool's capacity with the
claims read inside the transaction that writes the placement, after locking the pool's
backend (its ``services`` row, ``SELECT ... FOR UPDATE``; on SQLite every writing transaction
is ``BEGIN IMMEDIATE``, one at a time). Two replicas that chose the same free space are
serialised there: the second sees the first's claim and moves on to its next candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import Service, Volume, VolumeStatus
from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import is_unbounded

__all__ = ["Claimed", "PoolClaims", "apply_claims", "claim", "read_claims", "with_claims"]


@dataclass(frozen=True)
class PoolClaims:
    """What the volume rows placed on one pool claim."""

    #: GiB of the volumes on the pool, those in ``error`` left out (Cinder counts a volume's
    #: allocated capacity only once it was created).
    allocated_gb: float = 0.0
    #: Volumes on the pool, whatever their status (Cinder's ``volume_data_get_for_host``).
    volume_count: int = 0


_COUNTED_GB = func.sum(case((col(Volume.status) == VolumeStatus.ERROR, 0), else_=col(Volume.size)))


async def read_claims(db: Database) -> dict[str, PoolClaims]:
    """Every pool's claims, by ``host@backend#pool`` (one aggregate read)."""
    query = (
        select(Volume.host, _COUNTED_GB, func.count())
        .where(col(Volume.host).is_not(None))
        .group_by(col(Volume.host))
    )
    async with db.read() as session:
        rows = await session.exec(query)
        return {host: PoolClaims(float(gb or 0), int(n)) for host, gb, n in rows if host}


async def _claims_of(session: AsyncSession, pool_id: str) -> PoolClaims:
    query = select(_COUNTED_GB, func.count()).where(col(Volume.host) == pool_id)
    gb, count = (await session.exec(query)).one()
    return PoolClaims(float(gb or 0), int(count))


def with_claims(pool: PoolState, claims: PoolClaims | None) -> PoolState:
    """The pool as its report says, plus the claims the report does not show yet."""
    claims = claims or PoolClaims()
    unreported = max(0.0, claims.allocated_gb - pool.allocated_capacity_gb)
    free = pool.free_capacity_gb
    return dataclasses.replace(
        pool,
        allocated_capacity_gb=pool.allocated_capacity_gb + unreported,
        provisioned_capacity_gb=pool.provisioned_capacity_gb + unreported,
        free_capacity_gb=free if is_unbounded(free) else free - unreported,
        volume_count=claims.volume_count,
    )


def apply_claims(pools: Sequence[PoolState], claims: Mapping[str, PoolClaims]) -> list[PoolState]:
    return [with_claims(pool, claims.get(pool.pool_id)) for pool in pools]


@dataclass(frozen=True)
class Claimed:
    """The outcome of :func:`claim`."""

    #: The pool the volume was placed on, with the claims read before this one, or None.
    pool: PoolState | None
    #: Candidates that no longer had room once the other replicas' claims were read:
    #: (pool id, reason).
    rejected: tuple[tuple[str, str], ...]


async def claim(
    session: AsyncSession,
    *,
    volume_id: str,
    attempts: int,
    candidates: Sequence[PoolState],
    still_fits: Callable[[PoolState], str | None],
    handoff_timeout: float,
) -> Claimed | None:
    """Places the volume on the first candidate that still has room (``still_fits`` returns
    None, else why not), re-read under its backend's lock; None if the volume no longer waits
    to be placed after ``attempts`` failures (deleted, or placed by another replica)."""
    rejected: list[tuple[str, str]] = []
    for candidate in candidates:
        service = await session.get(Service, candidate.backend, with_for_update=True)
        pool = with_claims(candidate, await _claims_of(session, candidate.pool_id))
        if (reason := still_fits(pool)) is not None:
            rejected.append((candidate.pool_id, reason))
            continue
        placed = await volumes.place(
            session,
            volume_id,
            attempts,
            candidate.pool_id,
            service.uuid if service is not None else None,
            candidate.availability_zone,
            handoff_timeout,
        )
        if not placed:
            return None
        return Claimed(pool, tuple(rejected))
    return Claimed(None, tuple(rejected))
