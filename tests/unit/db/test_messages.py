"""Cinder's user message text (``cindermesh.db.messages``) and its one typed note: the filter
that removed the last candidate of a create no backend could take."""

from __future__ import annotations

import pytest
from sqlmodel import select

from cindermesh.db import volumes
from cindermesh.db.engine import Database
from cindermesh.db.messages import FILTER_NAMES, Action, Detail, user_message_text
from cindermesh.db.models import Message, VolumeStatus
from services.scheduler.filters import SOURCE_BACKEND_FILTER
from services.scheduler.registry import FilterName

from .conftest import add_volume

#: Cinder's user_message for a create no backend could take.
CINDER_TEXT = "schedule allocate volume:Could not find any available weighted backend."
ALLOCATE, NO_BACKEND = Action.SCHEDULE_ALLOCATE_VOLUME.id, Detail.NO_BACKEND_AVAILABLE.id


def test_cinders_text_without_a_filter() -> None:
    assert user_message_text(ALLOCATE, NO_BACKEND) == CINDER_TEXT
    assert user_message_text(ALLOCATE, NO_BACKEND, None) == CINDER_TEXT


def test_a_known_filter_is_named_after_cinders_text() -> None:
    text = user_message_text(ALLOCATE, NO_BACKEND, "CapabilitiesFilter")
    assert text == f"{CINDER_TEXT} Filter CapabilitiesFilter removed the last candidate."
    assert text.startswith(CINDER_TEXT)


@pytest.mark.parametrize(
    "name", ["", "capabilitiesfilter", "NoSuchFilter", "CapacityFilter; DROP TABLE", "Traceback"]
)
def test_anything_but_a_filter_name_is_left_out(name: str) -> None:
    assert user_message_text(ALLOCATE, NO_BACKEND, name) == CINDER_TEXT


def test_the_names_cover_every_filter_the_scheduler_runs() -> None:
    assert set(FilterName) <= set(FILTER_NAMES)
    assert SOURCE_BACKEND_FILTER.name in FILTER_NAMES
    assert len(set(FILTER_NAMES)) == len(FILTER_NAMES)


async def messages(db: Database) -> list[Message]:
    async with db.read() as session:
        return list(await session.exec(select(Message)))


async def test_fail_unplaced_records_the_filter_with_the_message(db: Database) -> None:
    await add_volume(db, "v1")
    async with db.session() as session:
        assert await volumes.fail_unplaced(
            session,
            "v1",
            "No valid backend was found.",
            Detail.NO_BACKEND_AVAILABLE,
            filter_name="CapabilitiesFilter",
        )
    (message,) = await messages(db)
    assert (message.resource_uuid, message.event_id) == ("v1", "VOLUME_VOLUME_001_003")
    assert message.filter_name == "CapabilitiesFilter"
    assert user_message_text(message.action_id, message.detail_id, message.filter_name) == (
        f"{CINDER_TEXT} Filter CapabilitiesFilter removed the last candidate."
    )


async def test_fail_unplaced_without_a_filter(db: Database) -> None:
    await add_volume(db, "v1")
    async with db.session() as session:
        assert await volumes.fail_unplaced(session, "v1", "boom")
    (message,) = await messages(db)
    assert message.filter_name is None
    assert message.event_id == "VOLUME_VOLUME_001_001"


async def test_an_unknown_filter_name_is_not_kept(db: Database) -> None:
    await add_volume(db, "v1")
    async with db.session() as session:
        await volumes.fail_unplaced(
            session, "v1", "x", Detail.NO_BACKEND_AVAILABLE, filter_name="some internal words"
        )
    (message,) = await messages(db)
    assert message.filter_name is None
    async with db.read() as session:
        volume = await volumes.locked(session, "v1")
    assert volume is not None and volume.status == VolumeStatus.ERROR
