"""The scheduler's reads and writes of volume rows, each write one transaction of the shared
repository's conditional updates (``cindermesh.db.volumes``; the protocol is in
``cindermesh.db.work``).

* :func:`claim_and_record`: the first candidate pool that still has room once the claims are
  re-read under its backend's lock (``claims``), written on a volume still waiting to be
  placed with its service, zone and the deadline by which its manager must accept it, as
  Cinder's scheduler writes ``host`` and ``availability_zone`` before casting to the
  backend, together with the decision (``cindermesh.db.placements``).
* :func:`hints_of`: the volume's scheduler hints and the hosts of the volumes they name.
* :func:`take_back`: a placed volume its manager did not accept (or stopped working on) is
  waiting to be placed again, one attempt more and its pool tried.
* :func:`mark_error`: a volume that cannot be placed goes to ``error`` with a reason, gives
  its quota back exactly once (``volumes.give_back_quota``, as the api and the managers) and
  gets Cinder's user message (``volumes.fail_unplaced``).
* :func:`unplaced` and :func:`abandoned`: what the sweep finds nobody working on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import placements, sources, volumes
from cindermesh.db.engine import Database
from cindermesh.db.messages import Detail, Field
from cindermesh.db.models import (
    Volume,
    VolumeStatus,
    VolumeType,
    VolumeTypeExtraSpec,
    utcnow,
)
from cindermesh.db.work import split_hosts
from cindermesh.errors import CindermeshError
from cindermesh.placement import PlacementAttempt
from cindermesh.scheduler_hints import SchedulerHints
from services.scheduler import claims
from services.scheduler.backend_state import PoolState
from services.scheduler.spec import RetryState, ScheduleRequest, VolumeSpec, VolumeTypeSpec

__all__ = [
    "Hints",
    "VolumeGone",
    "abandoned",
    "claim_and_record",
    "hints_of",
    "mark_error",
    "schedule_requests",
    "take_back",
    "unplaced",
    "waiting_since_before",
]

#: Rows one sweep looks at, at most.
_SWEEP_LIMIT = 200


class VolumeGone(CindermeshError):
    """The volume was deleted, placed by someone else, or left ``creating`` meanwhile."""

    def __init__(self, volume_id: str) -> None:
        super().__init__(f"Volume {volume_id} is no longer waiting to be placed")


async def claim_and_record(
    db: Database,
    spec: VolumeSpec,
    candidates: Sequence[PoolState],
    still_fits: Callable[[PoolState], str | None],
    attempts: int,
    handoff_timeout: float,
    decision: PlacementAttempt,
) -> claims.Claimed:
    """Claims the first candidate that still has room for a volume still waiting to be placed
    after ``attempts`` failures (``claims.claim``: the host, the service uuid, the pool's zone
    and the hand-off deadline) and records the decision with it, in one transaction; raises
    VolumeGone if the volume no longer waits (deleted, or placed by another replica)."""
    async with db.session() as session:
        claimed = await claims.claim(
            session,
            volume_id=spec.volume_id,
            attempts=attempts,
            candidates=candidates,
            still_fits=still_fits,
            handoff_timeout=handoff_timeout,
        )
        if claimed is None:
            raise VolumeGone(spec.volume_id)
        if claimed.pool is not None:
            placed = dataclasses.replace(decision, chosen=claimed.pool.pool_id)
            await placements.record(session, spec.volume_id, placed)
    return claimed


@dataclass(frozen=True)
class Hints:
    """A volume's scheduler hints, with the hosts of the volumes they name."""

    given: SchedulerHints
    #: Hosts of the ``same_host``/``different_host`` volumes (None: no such hint); a
    #: volume not placed yet has no host to match.
    same_host: tuple[str, ...] | None
    different_host: tuple[str, ...] | None


async def hints_of(db: Database, spec: VolumeSpec) -> Hints:
    """The scheduler hints the volume's row keeps (the create's; a reschedule or a sweep
    finds them there too), the named volumes looked up among the project's."""
    async with db.read() as session:
        text = (
            await session.exec(select(Volume.scheduler_hints).where(Volume.id == spec.volume_id))
        ).first()
        given = SchedulerHints.from_text(text)
        named = {*given.same_host, *given.different_host}
        hosts: dict[str, str] = {}
        if named:
            query = select(Volume.id, Volume.host).where(
                col(Volume.id).in_(named), col(Volume.project_id) == spec.project_id
            )
            hosts = {volume_id: host for volume_id, host in await session.exec(query) if host}

    def of(ids: tuple[str, ...]) -> tuple[str, ...] | None:
        return tuple(hosts[i] for i in ids if i in hosts) if ids else None

    return Hints(given, of(given.same_host), of(given.different_host))


async def take_back(
    db: Database, volume_id: str, host: str, attempts: int, reason: str, lapsed_only: bool
) -> RetryState | None:
    """Unplaces a volume placed on ``host`` after ``attempts`` failures that no manager holds
    (``lapsed_only``: only once its hand-off deadline or its worker's lease has passed),
    counting the attempt; the new retry state, or None if the row is gone or someone else has
    it now (a manager, or another placement)."""
    now = utcnow()
    async with db.session() as session:
        row = await volumes.locked(session, volume_id)
        if row is None or row.status != VolumeStatus.CREATING or row.host != host:
            return None
        if row.schedule_attempts != attempts:
            return None
        lapsed = row.lease_expires_at is None or row.lease_expires_at < now
        if (row.worker is not None or lapsed_only) and not lapsed:
            return None
        unplaced = await volumes.unplace(session, row, reason)
    if unplaced is None:
        return None
    num_attempts, hosts = unplaced
    return RetryState(num_attempts=num_attempts, hosts=hosts, last_error=reason)


async def mark_error(
    db: Database,
    spec: VolumeSpec,
    reason: str,
    detail: Field = Detail.UNKNOWN_ERROR,
    *,
    decision: PlacementAttempt | None = None,
    filter_name: str | None = None,
) -> bool:
    """Puts a volume waiting to be placed in ``error``, its quota given back once, Cinder's
    message (schedule allocate volume: ``detail``, naming ``filter_name`` if a filter removed
    the last candidate) and the ``decision`` recorded, in one transaction; False if it is
    gone or no longer waiting (someone else has it)."""
    async with db.session() as session:
        failed = await volumes.fail_unplaced(
            session, spec.volume_id, reason, detail, filter_name=filter_name
        )
        if failed and decision is not None:
            await placements.record(session, spec.volume_id, decision)
        return failed


async def waiting_since_before(db: Database, volume_id: str, moment: dt.datetime) -> bool:
    """Whether the volume exists and has waited to be placed since before ``moment`` (since it
    was accepted, or last handed back)."""
    last_change = func.coalesce(col(Volume.updated_at), col(Volume.created_at))
    async with db.read() as session:
        since = (await session.exec(select(last_change).where(Volume.id == volume_id))).first()
    return since is not None and since < moment


async def _requests(session: AsyncSession, rows: list[Volume]) -> list[ScheduleRequest]:
    type_ids = {row.volume_type_id for row in rows}
    types = {
        t.id: t
        for t in await session.exec(select(VolumeType).where(col(VolumeType.id).in_(type_ids)))
    }
    specs: dict[str, dict[str, str]] = {type_id: {} for type_id in type_ids}
    extra = select(VolumeTypeExtraSpec).where(col(VolumeTypeExtraSpec.volume_type_id).in_(type_ids))
    for spec in await session.exec(extra):
        specs[spec.volume_type_id][spec.key] = spec.value
    requests = []
    for row in rows:
        volume_type = types.get(row.volume_type_id)
        attempts, hosts = row.schedule_attempts, split_hosts(row.tried_hosts)
        retry = RetryState(attempts, hosts, row.last_error or "") if attempts or hosts else None
        requests.append(
            ScheduleRequest(
                spec=VolumeSpec(
                    volume_id=row.id,
                    project_id=row.project_id,
                    size_gb=row.size,
                    availability_zone=row.availability_zone,
                    volume_type=VolumeTypeSpec(
                        id=row.volume_type_id,
                        name=volume_type.name if volume_type is not None else "",
                        extra_specs=specs[row.volume_type_id],
                    ),
                    snapshot_id=row.snapshot_id or "",
                    source_volid=row.source_volid or "",
                    source_backend=await sources.source_backend(
                        session, row.snapshot_id, row.source_volid
                    ),
                ),
                retry=retry,
            )
        )
    return requests


async def unplaced(db: Database, unchanged_since: dt.datetime) -> list[ScheduleRequest]:
    """Volumes waiting to be placed whose row has not changed since ``unchanged_since``
    (their scheduler died, was never reached, or deferred them), oldest first."""
    last_change = func.coalesce(col(Volume.updated_at), col(Volume.created_at))
    query = (
        select(Volume)
        .where(
            col(Volume.status) == VolumeStatus.CREATING,
            col(Volume.host).is_(None),
            col(Volume.worker).is_(None),
            last_change < unchanged_since,
        )
        .order_by(col(Volume.created_at))
        .limit(_SWEEP_LIMIT)
    )
    async with db.read() as session:
        rows = list(await session.exec(query))
        return await _requests(session, rows) if rows else []


async def abandoned(db: Database) -> list[tuple[str, str, int]]:
    """(volume id, host, attempts) of placed volumes whose hand-off deadline or worker's lease
    has passed: their manager never accepted them, or stopped renewing its claim."""
    now = utcnow()
    lapsed = col(Volume.lease_expires_at).is_(None) | (col(Volume.lease_expires_at) < now)
    query = (
        select(Volume.id, Volume.host, Volume.schedule_attempts)
        .where(
            col(Volume.status) == VolumeStatus.CREATING,
            col(Volume.host).is_not(None),
            lapsed,
        )
        .limit(_SWEEP_LIMIT)
    )
    async with db.read() as session:
        return [(i, host, attempts) for i, host, attempts in await session.exec(query) if host]


async def schedule_requests(db: Database, volume_ids: list[str]) -> list[ScheduleRequest]:
    """The requests that place these volumes, as their rows now say."""
    if not volume_ids:
        return []
    async with db.read() as session:
        rows = list(await session.exec(select(Volume).where(col(Volume.id).in_(volume_ids))))
        return await _requests(session, rows)
