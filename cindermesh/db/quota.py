"""Quota accounting with Cinder's reserve / commit / rollback semantics.

A reservation holds ``delta`` of a resource in ``quota_usages.reserved`` until it is committed
(moved to ``in_use``) or rolled back. Giving a volume's quota back (``release``) lowers
``in_use``, never below zero: a release that would is an error (``UsageBelowZero``), since
it means the quota was given back twice. A volume's quota is released only through
``cindermesh.db.volumes.give_back_quota``, once. Every function runs inside the caller's
transaction.

A project's limit for a resource (:func:`limits_for`, the one place this precedence lives, for
reservations and the quota APIs alike) is its own ``quotas`` row, else the ``default`` quota
class's row (``quota_classes``, Cinder's ``use_default_quota_class``), else the configured
default (``-1``, unlimited, for the per-volume-type resources).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.insert_missing import insert_missing
from cindermesh.db.models import Quota, QuotaClass, QuotaUsage, Reservation
from cindermesh.errors import QuotaExceeded
from cindermesh.settings import QuotaSettings

__all__ = [
    "DEFAULT_QUOTA_CLASS",
    "UNLIMITED",
    "UsageBelowZero",
    "class_limits",
    "commit",
    "commit_deltas",
    "default_limits",
    "defaults_for",
    "expire_reservations",
    "limits_for",
    "release",
    "reserve",
    "rollback",
    "snapshot_deltas",
    "volume_deltas",
]

UNLIMITED = -1
#: The quota class whose limits are every project's defaults (Cinder's ``_DEFAULT_QUOTA_NAME``).
DEFAULT_QUOTA_CLASS = "default"

log = logging.getLogger(__name__)


def volume_deltas(size_gb: int, volume_type_name: str, sign: int = 1) -> dict[str, int]:
    """The quota resources one volume counts against (Cinder's per-type keys included)."""
    return {
        "volumes": sign,
        "gigabytes": sign * size_gb,
        f"volumes_{volume_type_name}": sign,
        f"gigabytes_{volume_type_name}": sign * size_gb,
    }


def snapshot_deltas(
    size_gb: int, volume_type_name: str, quotas: QuotaSettings, sign: int = 1
) -> dict[str, int]:
    """The quota resources one snapshot of a ``size_gb`` volume counts against (Cinder's
    ``_create_snapshot_in_db``: gigabytes too unless ``no_snapshot_gb_quota``; per-type keys)."""
    deltas = {"snapshots": sign, f"snapshots_{volume_type_name}": sign}
    if not quotas.no_snapshot_gb_quota:
        deltas |= {"gigabytes": sign * size_gb, f"gigabytes_{volume_type_name}": sign * size_gb}
    return deltas


def default_limits(quotas: QuotaSettings) -> dict[str, int]:
    return {
        "volumes": quotas.volumes,
        "gigabytes": quotas.gigabytes,
        "snapshots": quotas.snapshots,
        "backups": quotas.backups,
        "backup_gigabytes": quotas.backup_gigabytes,
        "groups": quotas.groups,
        "per_volume_gigabytes": quotas.per_volume_gigabytes,
    }


def _pick(limits: dict[str, int], rows: Iterable[tuple[str, int]], every: bool) -> None:
    """Writes the rows' limits over ``limits``: all of them (``every``), else only those of the
    resources ``limits`` already names."""
    limits.update((resource, limit) for resource, limit in rows if every or resource in limits)


async def class_limits(
    session: AsyncSession,
    class_name: str,
    quotas: QuotaSettings,
    names: Iterable[str] | None = None,
) -> dict[str, int]:
    """A quota class's limits: its own rows, else the ``default`` class's, else the configured
    defaults. ``names``: the resources to answer (unknown ones unlimited); None: the
    configured ones and every resource a row names."""
    configured = default_limits(quotas)
    limits = configured if names is None else {n: configured.get(n, UNLIMITED) for n in names}
    classes = {DEFAULT_QUOTA_CLASS, class_name}
    query = select(QuotaClass.class_name, QuotaClass.resource, QuotaClass.hard_limit).where(
        col(QuotaClass.class_name).in_(classes)
    )
    rows = list(await session.exec(query))
    for wanted in dict.fromkeys((DEFAULT_QUOTA_CLASS, class_name)):  # the named class wins
        _pick(limits, ((r, limit) for c, r, limit in rows if c == wanted), names is None)
    return limits


async def defaults_for(
    session: AsyncSession, quotas: QuotaSettings, names: Iterable[str] | None = None
) -> dict[str, int]:
    """Every project's default limits: the ``default`` class's rows over the configured ones
    (``names`` as in :func:`class_limits`)."""
    return await class_limits(session, DEFAULT_QUOTA_CLASS, quotas, names)


async def limits_for(
    session: AsyncSession,
    project_id: str,
    quotas: QuotaSettings,
    names: Iterable[str] | None = None,
) -> dict[str, int]:
    """Hard limits of a project: its own rows, else the ``default`` class's, else the
    configured defaults (``names`` as in :func:`class_limits`; a resource none of them names
    is unlimited)."""
    limits = await defaults_for(session, quotas, names)
    query = select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id)
    _pick(limits, await session.exec(query), names is None)
    return limits


async def _lock_usages(
    session: AsyncSession, project_id: str, resources: Sequence[str]
) -> dict[str, QuotaUsage]:
    # In the resources' order, so that two transactions locking some of the same rows take
    # them in the same order (no deadlock).
    query = (
        select(QuotaUsage)
        .where(QuotaUsage.project_id == project_id, col(QuotaUsage.resource).in_(resources))
        .order_by(col(QuotaUsage.resource))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {u.resource: u for u in await session.exec(query)}


async def _usages(
    session: AsyncSession, project_id: str, resources: Sequence[str]
) -> dict[str, QuotaUsage]:
    """The project's usage rows of ``resources``, locked until the transaction ends; a row
    not there yet (the project's first use of the resource) is inserted first, tolerating
    another transaction inserting it at the same time (``insert_missing``)."""
    usages = await _lock_usages(session, project_id, resources)
    missing = sorted(set(resources) - set(usages))
    if missing:
        await insert_missing(
            session, QuotaUsage, [{"project_id": project_id, "resource": r} for r in missing]
        )
        usages |= await _lock_usages(session, project_id, missing)
    return usages


def _over(limit: int, delta: int, usage: QuotaUsage) -> bool:
    """Cinder's test: a negative limit is unlimited; only increments are refused."""
    return limit >= 0 and delta >= 0 and limit < delta + usage.in_use + usage.reserved


def _exceeded(resource: str, limit: int, requested: int, usage: QuotaUsage) -> QuotaExceeded:
    """Cinder's message for the resource that decides (see ``reserve``)."""
    if "gigabytes" in resource:
        consumed = usage.in_use + usage.reserved
        return QuotaExceeded(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
            f"{resource} quota. Requested {requested}G, quota is {limit}G and "
            f"{consumed}G has been consumed."
        )
    if "snapshots" in resource:
        return QuotaExceeded(
            f"SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded"
        )
    return QuotaExceeded(
        f"VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) "
        f"exceeded for quota '{resource}'."
    )


async def reserve(
    session: AsyncSession,
    project_id: str,
    deltas: Mapping[str, int],
    quotas: QuotaSettings,
    durable: bool = True,
    limits: Mapping[str, int] | None = None,
) -> list[str]:
    """Reserves ``deltas``; raises QuotaExceeded (nothing reserved) if a limit would be passed.

    As in Cinder, when several resources would go over, their names are sorted and the first
    one decides the message (so ``gigabytes*`` wins over ``volumes*``). ``durable``: the
    reservations are rows (returned by id) that outlive the transaction and expire; without,
    the caller commits them in the same transaction (``commit_deltas``) and none is written.
    ``limits``: the project's, when the caller has already read them (``limits_for``).
    """
    if limits is None:
        limits = await limits_for(session, project_id, quotas)
    usages = await _usages(session, project_id, list(deltas))
    overs = sorted(
        resource
        for resource, delta in deltas.items()
        if _over(limits.get(resource, UNLIMITED), delta, usages[resource])
    )
    if overs:
        first = overs[0]
        raise _exceeded(first, limits[first], deltas[first], usages[first])
    for resource, delta in deltas.items():
        usages[resource].reserved += delta
    if not durable:
        return []
    reservations = [
        Reservation(project_id=project_id, resource=resource, delta=delta)
        for resource, delta in deltas.items()
    ]
    session.add_all(reservations)
    return [r.id for r in reservations]


async def _settle(session: AsyncSession, reservation_ids: Sequence[str], to_in_use: bool) -> None:
    """Ends reservations: their amounts leave ``reserved`` (and join ``in_use`` if committed).

    Three statements whatever the number of reservations: read them, read (and lock) their
    usages, delete them; the usage rows are written back by the session's flush.
    """
    # Locked, so that two processes settling the same reservation (a commit and an expiry)
    # cannot both count it: the second finds it gone.
    query = select(Reservation).where(col(Reservation.id).in_(reservation_ids))
    reservations = list(await session.exec(query.with_for_update()))
    by_project: dict[str, list[Reservation]] = {}
    for reservation in reservations:
        by_project.setdefault(reservation.project_id, []).append(reservation)
    for project_id, mine in sorted(by_project.items()):  # projects in one order: no deadlock
        usages = await _usages(session, project_id, [r.resource for r in mine])
        for reservation in mine:
            usage = usages[reservation.resource]
            usage.reserved -= reservation.delta
            if to_in_use:
                usage.in_use += reservation.delta
    if reservations:
        ids = [r.id for r in reservations]
        await session.exec(delete(Reservation).where(col(Reservation.id).in_(ids)))


async def commit(session: AsyncSession, reservation_ids: Sequence[str]) -> None:
    """Moves reserved amounts to in_use."""
    await _settle(session, reservation_ids, to_in_use=True)


async def commit_deltas(session: AsyncSession, project_id: str, deltas: Mapping[str, int]) -> None:
    """Moves amounts reserved in this same transaction (``reserve(durable=False)``) to
    in_use."""
    usages = await _usages(session, project_id, list(deltas))
    for resource, delta in deltas.items():
        usages[resource].reserved -= delta
        usages[resource].in_use += delta


async def rollback(session: AsyncSession, reservation_ids: Sequence[str]) -> None:
    """Gives reserved amounts back."""
    await _settle(session, reservation_ids, to_in_use=False)


class UsageBelowZero(Exception):
    """A release would take usage below zero: the quota was given back twice, or was never
    counted. An invariant broken, never clamped away."""

    def __init__(self, project_id: str, short: Mapping[str, tuple[int, int]]) -> None:
        detail = ", ".join(f"{r}: in_use {u} < {d}" for r, (u, d) in sorted(short.items()))
        super().__init__(f"releasing more quota than project {project_id} uses ({detail})")


async def release(session: AsyncSession, project_id: str, deltas: Mapping[str, int]) -> None:
    """Lowers in_use by ``deltas`` (a deleted or failed volume gives its quota back); raises
    UsageBelowZero (and logs it), changing nothing, if a usage would go below zero."""
    usages = await _usages(session, project_id, list(deltas))
    short = {
        resource: (usages[resource].in_use, delta)
        for resource, delta in deltas.items()
        if usages[resource].in_use < delta
    }
    if short:
        error = UsageBelowZero(project_id, short)
        log.error("%s", error)
        raise error
    for resource, delta in deltas.items():
        usages[resource].in_use -= delta


async def expire_reservations(session: AsyncSession, created_before: dt.datetime) -> int:
    """Rolls back reservations made before ``created_before`` (Cinder's
    ``reservation_expire``: a reservation expires ``reservation_expire`` seconds after it was
    made): the work that made them died before committing. Returns how many; safe when
    several processes expire at once, or one expires what another commits: each row is
    locked and settled by whoever deletes it; rows another transaction holds are skipped
    (``SKIP LOCKED``: a commit in progress, another replica's expiry; SQLite has one writer),
    so that expiring never waits on them."""
    query = (
        select(Reservation.id)
        .where(col(Reservation.created_at) < created_before)
        .order_by(col(Reservation.created_at))
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    expired = list(await session.exec(query))
    if expired:
        await rollback(session, expired)
    return len(expired)
