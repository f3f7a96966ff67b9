"""Disabled and frozen backends get no volumes (Cinder's scheduler ignores disabled services),
with a real database and the in-memory volume manager double."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from cindermesh.db.engine import Database
from cindermesh.db.models import Message, Service, VolumeStatus
from services.scheduler.disabled import DisabledBackends

from .conftest import add_volume, get_volume, released_once, usages
from .fakes import A, B, FakeManagers, make_scheduler, request

BACKEND_A, BACKEND_B = "node1@file-1", "node2@file-2"


async def set_service(db: Database, host: str, **values: object) -> None:
    async with db.session() as session:
        service = await session.get(Service, host)
        if service is None:
            service = Service(host=host, address="x", availability_zone="az2")
        for key, value in values.items():
            setattr(service, key, value)
        session.add(service)


async def test_a_disabled_backend_is_left_out(db: Database) -> None:
    managers = FakeManagers()
    scheduler = make_scheduler(db, managers)  # A has more room: it wins when enabled
    await set_service(db, BACKEND_A, disabled=True, disabled_reason="maintenance")
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert [s.host for s in managers.sent] == [B]


async def test_a_frozen_backend_is_left_out(db: Database) -> None:
    managers = FakeManagers()
    scheduler = make_scheduler(db, managers)
    await set_service(db, BACKEND_A, frozen=True)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert [s.host for s in managers.sent] == [B]


async def test_only_disabled_backends_left_is_no_valid_backend(db: Database) -> None:
    managers = FakeManagers()
    scheduler = make_scheduler(db, managers, disabled_refresh=0.0)
    await set_service(db, BACKEND_A, disabled=True)
    await set_service(db, BACKEND_B, disabled=True)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert managers.tries == []
    row = await get_volume(db, "v1")
    assert (row.status, row.quota_held) == (VolumeStatus.ERROR, False)
    assert row.error_reason == "No valid backend was found. No weighed backends available"
    assert await usages(db) == released_once()
    async with db.read() as session:
        (message,) = list(await session.exec(select(Message)))
    assert (message.resource_uuid, message.event_id) == ("v1", "VOLUME_VOLUME_001_003")

    await set_service(db, BACKEND_A, disabled=False)  # enabled again: placed there
    await add_volume(db, "v2")
    await scheduler.schedule(request("v2"))
    assert [s.host for s in managers.sent] == [A]


async def test_the_set_is_read_at_most_once_per_max_age(db: Database) -> None:
    now = [100.0]
    disabled = DisabledBackends(db, max_age=1.0, clock=lambda: now[0])
    assert disabled.known() == frozenset()
    assert await disabled.current() == frozenset()
    await set_service(db, BACKEND_A, disabled=True)
    now[0] += 0.5
    assert await disabled.current() == frozenset()  # still the last read
    now[0] += 0.6
    assert await disabled.current() == {BACKEND_A}
    assert disabled.known() == {BACKEND_A}


async def test_concurrent_placements_share_one_read(db: Database) -> None:
    reads = 0
    disabled = DisabledBackends(db, max_age=1.0)
    real_read = disabled._read

    async def counted() -> None:
        nonlocal reads
        reads += 1
        await real_read()

    disabled._read = counted  # type: ignore[method-assign]
    await set_service(db, BACKEND_B, disabled=True)
    results = await asyncio.gather(*(disabled.current() for _ in range(20)))
    assert reads == 1
    assert all(r == {BACKEND_B} for r in results)
