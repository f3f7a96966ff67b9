"""The volume manager's reads and writes of volume rows, one transaction per function; the
writes are the shared repository's (``cindermesh.db.volumes``), in the manager's terms.

A manager works on a volume only while it holds it: ``worker`` on the row is its instance id,
taken by a conditional write (:func:`claim`, :func:`take_over`) and kept by renewing the
lease (:func:`renew`); every later write is conditional on it still holding the row, so a
manager that lost a volume (its lease lapsed and a scheduler placed the volume elsewhere, or
the api marked it for deletion) changes nothing. The protocol is in ``cindermesh.db.work``.

Quota is given back at most once per volume, by ``volumes.give_back_quota`` (the scheduler
and the api use the same function).
"""

from __future__ import annotations

from sqlmodel import col, select

from cindermesh.db import volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus, utcnow
from cindermesh.db.volumes import Expect
from cindermesh.db.work import free_at
from services.volume.domain import RetryState, backend_of
from services.volume.errors import VolumeNotFound, VolumeStateChanged

__all__ = [
    "claim",
    "destroy_volume",
    "get_volume",
    "hand_back",
    "mark_available",
    "mark_error",
    "on_backend",
    "renew",
    "set_status",
    "take_over",
    "unclaimed",
    "volume_hosts",
]

on_backend = volumes.on_backend


async def get_volume(db: Database, volume_id: str) -> Volume:
    async with db.read() as session:
        volume = await session.get(Volume, volume_id)
    if volume is None:
        raise VolumeNotFound(volume_id)
    return volume


async def claim(
    db: Database,
    volume_id: str,
    status: str,
    backend_host: str,
    worker: str,
    lease: float,
    host: str | None = None,
) -> Volume | None:
    """Takes a volume of this backend in ``status`` that nobody else holds (or whose holder's
    lease has lapsed), and (if given) placed on ``host`` exactly. Raises VolumeNotFound, or
    VolumeStateChanged if the volume is in another state or placed elsewhere; None if another
    live worker holds it (or took it meanwhile)."""
    now = utcnow()
    async with db.session() as session:
        volume = await volumes.locked(session, volume_id)
        if volume is None:
            raise VolumeNotFound(volume_id)
        placed_here = volume.host is not None and backend_of(volume.host) == backend_host
        if volume.status != status or not placed_here or host not in (None, volume.host):
            raise VolumeStateChanged(volume_id, status, volume.status)
        held = volume.worker not in (None, worker) and (
            volume.lease_expires_at is not None and volume.lease_expires_at >= now
        )
        if held or not await volumes.hold(session, volume, worker, lease):
            return None
        return await volumes.locked(session, volume_id)


async def take_over(db: Database, backend_host: str, worker: str, lease: float) -> list[Volume]:
    """At start: every volume of this backend being created or deleted becomes ours, whoever
    held it (one manager serves a backend, so its holder was a previous run of this one)."""
    async with db.session() as session:
        return await volumes.take_over(session, backend_host, worker, lease)


async def unclaimed(db: Database, backend_host: str) -> list[tuple[str, str]]:
    """(id, status) of this backend's volumes with work (``volumes.has_work``) that nobody
    holds: hand-offs whose RPC never arrived, and work marked while its manager was down."""
    query = select(Volume.id, Volume.status).where(
        on_backend(backend_host), volumes.has_work(), free_at(utcnow())
    )
    async with db.read() as session:
        return [(volume_id, status) for volume_id, status in await session.exec(query)]


async def volume_hosts(db: Database, volume_ids: list[str]) -> dict[str, str | None]:
    """The host of each of these volumes that has a row."""
    async with db.read() as session:
        query = select(Volume.id, Volume.host).where(col(Volume.id).in_(volume_ids))
        return {volume_id: host for volume_id, host in await session.exec(query)}


async def renew(db: Database, worker: str, volume_ids: list[str], lease: float) -> int:
    """Extends the lease of the volumes ``worker`` holds and works on; returns how many (a
    volume held but no longer worked on is left to lapse, so that someone takes it)."""
    if not volume_ids:
        return 0
    async with db.session() as session:
        return await volumes.renew(session, worker, volume_ids, lease)


async def mark_available(
    db: Database, volume_id: str, worker: str, service_uuid: str | None
) -> Volume:
    """``creating`` -> ``available`` with ``launched_at``, and the volume is released; raises
    VolumeNotFound, or VolumeStateChanged if ``worker`` no longer holds it."""
    async with db.session() as session:
        done = await volumes.finish_create(session, volume_id, worker, service_uuid)
        volume = await volumes.locked(session, volume_id)
    if volume is None:
        raise VolumeNotFound(volume_id)
    if not done:
        raise VolumeStateChanged(volume_id, VolumeStatus.CREATING, volume.status)
    return volume


async def mark_error(db: Database, volume_id: str, reason: str, worker: str) -> bool:
    """``creating`` -> ``error`` with the reason, the quota given back (once) and the volume
    released; False if ``worker`` no longer holds it."""
    async with db.session() as session:
        return await volumes.fail_create(session, volume_id, worker, reason)


async def set_status(db: Database, volume_id: str, expected: str, status: str, worker: str) -> bool:
    """``expected`` -> ``status`` and the volume released; False if ``worker`` no longer holds
    it in ``expected``."""
    async with db.session() as session:
        return await volumes.set_status(session, volume_id, expected, status, worker)


async def hand_back(
    db: Database, volume_id: str, worker: str, host: str, reason: str
) -> RetryState | None:
    """Gives a volume whose create failed here back to the schedulers (Cinder: ``host =
    None``, status stays ``creating``), one attempt more and this pool tried; None if
    ``worker`` no longer holds it."""
    async with db.session() as session:
        volume = await volumes.locked(session, volume_id)
        if volume is None or volume.status != VolumeStatus.CREATING:
            return None
        if volume.worker != worker or volume.host != host:
            return None
        unplaced = await volumes.unplace(session, volume, reason)
    if unplaced is None:
        return None
    num_attempts, hosts = unplaced
    return RetryState(num_attempts=num_attempts, hosts=hosts, last_error=reason)


async def destroy_volume(db: Database, volume_id: str, worker: str) -> bool:
    """Deletes the metadata and the row and gives the quota back, in one transaction; False if
    the row is already gone or ``worker`` no longer holds it."""
    held = Expect(status=VolumeStatus.DELETING, worker=worker)
    async with db.session() as session:
        return await volumes.destroy(session, volume_id, held)
