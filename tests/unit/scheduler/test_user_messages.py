"""Cinder's user messages for creates that end in ``error``, recorded in the transaction that
puts the volume in ``error`` (``cindermesh.db.volumes``), with a real database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import select

from cindermesh.db.engine import Database
from cindermesh.db.models import Message, VolumeCreateRequest, VolumeStatus
from cindermesh.telemetry.request_id import request_id_var
from services.scheduler import volume_rows
from services.scheduler.spec import RetryState
from services.volume import store

from .conftest import add_volume, count_usage, get_volume, update_row
from .fakes import A, FakeManagers, make_scheduler, request

REQUEST_ID = "req-11111111-2222-3333-4444-555555555555"


async def messages(db: Database) -> Sequence[Message]:
    async with db.read() as session:
        return list(await session.exec(select(Message)))


async def accepted_under(db: Database, volume_id: str, request_id: str = REQUEST_ID) -> None:
    async with db.session() as session:
        session.add(
            VolumeCreateRequest(project_id="p1", request_id=request_id, volume_id=volume_id)
        )


async def test_no_valid_backend_records_one_message(db: Database) -> None:
    scheduler = make_scheduler(db, FakeManagers())
    await add_volume(db, "v1", size=10_000)
    await count_usage(db, 10_000)
    await accepted_under(db, "v1")
    for _ in range(2):  # offered again (a sweep): no longer waiting, so no second message
        await scheduler.schedule(request("v1", size=10_000))
    assert (await get_volume(db, "v1")).status == VolumeStatus.ERROR
    (message,) = await messages(db)
    assert (message.project_id, message.resource_uuid, message.resource_type) == (
        "p1",
        "v1",
        "VOLUME",
    )
    assert (message.event_id, message.action_id, message.detail_id) == (
        "VOLUME_VOLUME_001_003",
        "001",
        "003",
    )
    assert (message.message_level, message.request_id) == ("ERROR", REQUEST_ID)
    assert message.expires_at is not None and message.created_at is not None


async def test_attempts_exhausted_is_no_valid_backend(db: Database) -> None:
    scheduler = make_scheduler(db, FakeManagers(), max_attempts=1)
    await add_volume(db, "v1")
    await update_row(db, "v1", schedule_attempts=1, tried_hosts=A)
    await scheduler.schedule(request("v1", retry=RetryState(1, (A,), "boom")))
    (message,) = await messages(db)
    assert message.event_id == "VOLUME_VOLUME_001_003"


async def test_other_failures_are_unknown_errors_under_the_served_request_id(
    db: Database,
) -> None:
    """No accepted-create row (its idempotency window passed): the request being served."""
    await add_volume(db, "v1")
    token = request_id_var.set(REQUEST_ID)
    try:
        assert await volume_rows.mark_error(db, request("v1").spec, "something broke")
    finally:
        request_id_var.reset(token)
    (message,) = await messages(db)
    assert (message.event_id, message.request_id) == ("VOLUME_VOLUME_001_001", REQUEST_ID)


async def test_a_volume_no_longer_waiting_gets_no_message(db: Database) -> None:
    await add_volume(db, "v1")
    await update_row(db, "v1", host=A)  # placed by another scheduler
    assert not await volume_rows.mark_error(db, request("v1").spec, "late")
    assert await messages(db) == []


async def test_a_manager_failure_records_the_driver_message(db: Database) -> None:
    await add_volume(db, "v1")
    await accepted_under(db, "v1")
    worker = "node1@file-1/w1"
    await update_row(db, "v1", host=A, worker=worker)
    assert await store.mark_error(db, "v1", "Volume v1: create failed: boom", worker)
    (message,) = await messages(db)
    assert (message.event_id, message.request_id) == ("VOLUME_VOLUME_008_012", REQUEST_ID)
