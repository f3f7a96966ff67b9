"""The attach state machine (``cindermesh.db.attachments``) on a real SQLite database: Cinder's
statuses at every step, and a volume's status derived from the attachments left; the
attachment bodies with Cinder's schema messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2
from sqlmodel import select

from cindermesh.db import attachments
from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    AttachStatus,
    Volume,
    VolumeAttachment,
    VolumeStatus,
    VolumeType,
)
from cindermesh.errors import InvalidInput
from cindermesh.settings import Settings
from services.api.attachments.body import parse_create, parse_update
from services.api.attachments.operations import flatten
from services.api.edge.microversion import Microversion
from services.api.schema import JsonValue
from services.api.volume_actions.body import parse_attach, parse_force_detach

INSTANCE = "d8690571-6948-4071-ab43-397d4590b302"
OTHER_INSTANCE = "5f0d3b9c-8a51-4d43-9a2e-0f3e0b5a7c11"
VOLUME = "4d75b645-a478-48b1-97c8-503f64242f1a"
CONNECTOR = {"host": "compute-1", "ip": "192.0.2.10", "mountpoint": "/dev/vdb"}


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    yield database
    await database.close()


async def _volume(db: Database, multiattach: bool = False, status: str = "available") -> Volume:
    async with db.session() as session:
        type_id = (
            await session.exec(select(VolumeType.id).where(VolumeType.name == DEFAULT_VOLUME_TYPE))
        ).first()
        if type_id is None:
            default = VolumeType(name=DEFAULT_VOLUME_TYPE)
            session.add(default)
            await session.flush()
            type_id = default.id
        volume = Volume(
            project_id="p1",
            user_id="u1",
            size=1,
            availability_zone="nova",
            volume_type_id=type_id,
            host="h@b#b",
            status=status,
            multiattach=multiattach,
        )
        session.add(volume)
    return volume


async def _state(db: Database, volume_id: str) -> tuple[str, str, list[str]]:
    async with db.read() as session:
        volume = await session.get(Volume, volume_id)
        assert volume is not None
        held = (await attachments.attachments_of(session, [volume_id]))[volume_id]
    return volume.status, volume.attach_status, sorted(a.attach_status for a in held)


async def _reserve(
    db: Database, volume: Volume, instance: str | None = INSTANCE
) -> VolumeAttachment | None:
    async with db.session() as session:
        fresh = await session.get(Volume, volume.id)
        assert fresh is not None
        return await attachments.reserve(session, fresh, instance, "null")


async def _connect(db: Database, attachment: VolumeAttachment) -> None:
    async with db.session() as session:
        assert await attachments.connect(session, attachment, CONNECTOR, {"x": 1}, "rw")


async def _complete(db: Database, attachment: VolumeAttachment) -> None:
    async with db.session() as session:
        assert await attachments.complete(session, attachment)


async def _remove(db: Database, attachment: VolumeAttachment) -> bool:
    async with db.session() as session:
        return await attachments.remove(session, attachment.volume_id, attachment.id)


async def test_novas_sequence_moves_both_rows_together(db: Database) -> None:
    volume = await _volume(db)
    attachment = await _reserve(db, volume)
    assert attachment is not None
    assert await _state(db, volume.id) == ("reserved", "detached", ["reserved"])
    await _connect(db, attachment)
    assert await _state(db, volume.id) == ("attaching", "attaching", ["attaching"])
    await _complete(db, attachment)
    assert await _state(db, volume.id) == ("in-use", "attached", ["attached"])
    async with db.read() as session:
        row = await attachments.find(session, attachment.id)
    assert row is not None
    assert attachments.connector_of(row) == CONNECTOR
    assert (row.attached_host, row.mountpoint, row.attach_mode) == ("compute-1", "/dev/vdb", "rw")
    assert await _remove(db, attachment)
    assert await _state(db, volume.id) == ("available", "detached", [])
    assert not await _remove(db, attachment)


async def test_a_second_reserve_of_a_volume_that_is_not_multiattach_is_refused(
    db: Database,
) -> None:
    volume = await _volume(db)
    first = await _reserve(db, volume)
    assert first is not None
    assert await _reserve(db, volume, OTHER_INSTANCE) is None
    # The same server again (a move to another host): Cinder's override.
    assert await _reserve(db, volume, INSTANCE) is not None
    assert await _state(db, volume.id) == ("reserved", "detached", ["reserved", "reserved"])


@pytest.mark.parametrize("status", ["creating", "error", "deleting", "extending", "in-use"])
async def test_reserve_refuses_a_volume_that_is_not_available(db: Database, status: str) -> None:
    volume = await _volume(db, status=status)
    assert await _reserve(db, volume) is None
    assert await _state(db, volume.id) == (status, "detached", [])


async def test_a_multiattach_volume_keeps_the_status_of_its_best_attachment(db: Database) -> None:
    volume = await _volume(db, multiattach=True)
    first = await _reserve(db, volume)
    assert first is not None
    await _connect(db, first)
    await _complete(db, first)
    second = await _reserve(db, volume, OTHER_INSTANCE)
    assert second is not None
    assert await _state(db, volume.id) == ("reserved", "attached", ["attached", "reserved"])
    # Deleting the one attached leaves the reserved one: the volume follows it.
    assert await _remove(db, first)
    assert await _state(db, volume.id) == ("reserved", "reserved", ["reserved"])
    assert await _remove(db, second)
    assert await _state(db, volume.id) == ("available", "detached", [])


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        ([], ("available", "detached")),
        (["attached", "reserved"], ("in-use", "attached")),
        (["reserved", "attaching"], ("attaching", "attaching")),
        (["detaching", "reserved"], ("detaching", "detaching")),
        (["reserved"], ("reserved", "reserved")),
        (["error_attaching"], ("available", "detached")),
        (["error_detaching", "attached"], ("in-use", "attached")),
    ],
)
def test_statuses_from_the_attachments_left(left: list[str], expected: tuple[str, str]) -> None:
    rows = [VolumeAttachment(volume_id="v", project_id="p", attach_status=s) for s in left]
    assert attachments.statuses_from(rows) == expected


async def test_concurrent_cycles_on_a_multiattach_volume_end_consistent(db: Database) -> None:
    volume = await _volume(db, multiattach=True)

    async def cycle(index: int) -> None:
        async with db.session() as session:
            fresh = await session.get(Volume, volume.id)
            assert fresh is not None
            attachment = await attachments.reserve(
                session, fresh, f"{index:08d}-0000-0000-0000-000000000000", "null"
            )
        if attachment is None:  # Cinder refuses a reserve while another one is reserved.
            return
        await _connect(db, attachment)
        await _complete(db, attachment)
        assert await _remove(db, attachment)

    await asyncio.gather(*(cycle(i) for i in range(20)))
    assert await _state(db, volume.id) == ("available", "detached", [])


async def test_legacy_attach_then_detach(db: Database) -> None:
    volume = await _volume(db)
    async with db.session() as session:
        assert await attachments.reserve_legacy(session, volume)
    assert await _state(db, volume.id) == ("attaching", "detached", [])
    request = attachments.LegacyAttach(INSTANCE, None, "/dev/vdc", "rw")
    async with db.session() as session:
        made = await attachments.attach(session, volume.id, request)
    assert isinstance(made, VolumeAttachment)
    assert await _state(db, volume.id) == ("in-use", "attached", ["attached"])
    # The same server again: the same attachment.
    async with db.session() as session:
        again = await attachments.attach(session, volume.id, request)
    assert isinstance(again, VolumeAttachment) and again.id == made.id
    # Another server on a volume that is not multiattach: Cinder's reason.
    other = attachments.LegacyAttach(OTHER_INSTANCE, None, "/dev/vdd", "rw")
    async with db.session() as session:
        refused = await attachments.attach(session, volume.id, other)
    assert refused == "volume is already attached and multiple attachments are not enabled"
    async with db.session() as session:
        assert await attachments.begin_detaching(session, volume.id)
        assert await attachments.roll_detaching(session, volume.id)
        assert await attachments.remove(session, volume.id, made.id)
    assert await _state(db, volume.id) == ("available", "detached", [])


async def test_unreserve_goes_back_to_in_use_with_attachments(db: Database) -> None:
    volume = await _volume(db, multiattach=True)
    async with db.session() as session:
        made = await attachments.attach(
            session, volume.id, attachments.LegacyAttach(INSTANCE, None, "/dev/vdc", "rw")
        )
    assert isinstance(made, VolumeAttachment)
    async with db.session() as session:
        fresh = await session.get(Volume, volume.id)
        assert fresh is not None
        assert await attachments.reserve_legacy(session, fresh)
    async with db.session() as session:
        assert await attachments.unreserve(session, volume.id)
        assert not await attachments.unreserve(session, volume.id)
    assert await _state(db, volume.id) == ("in-use", "attached", ["attached"])


async def test_clear_removes_every_attachment(db: Database) -> None:
    volume = await _volume(db, multiattach=True)
    for instance in (INSTANCE, OTHER_INSTANCE):
        async with db.session() as session:
            await attachments.attach(
                session, volume.id, attachments.LegacyAttach(instance, None, "/dev/vdc", "rw")
            )
    async with db.session() as session:
        await attachments.clear(session, volume.id)
    assert await _state(db, volume.id) == (VolumeStatus.AVAILABLE, AttachStatus.DETACHED, [])


def test_flatten_is_cinders_shape() -> None:
    info: dict[str, JsonValue] = {
        "driver_volume_type": "rbd",
        "data": {"name": "volumes/volume-1", "hosts": ["h"]},
    }
    assert flatten(info, "a1") == {
        "name": "volumes/volume-1",
        "hosts": ["h"],
        "driver_volume_type": "rbd",
        "attachment_id": "a1",
        "enforce_multipath": False,
    }


def _value(body: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if isinstance(body, dict):
        value.struct_value.SetInParent()
        value.struct_value.update(body)
    else:
        value.string_value = body
    return value


def _message(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value.message


V44 = Microversion(3, 44)
V54 = Microversion(3, 54)


def test_create_body() -> None:
    given = parse_create(_value({"volume_uuid": VOLUME, "instance_uuid": INSTANCE}), True, V44)
    assert (given.volume_id, given.instance_uuid, given.connector, given.mode) == (
        VOLUME,
        INSTANCE,
        None,
        "null",
    )
    with_mode = parse_create(_value({"volume_uuid": VOLUME, "mode": "ro"}), True, V54)
    assert with_mode.mode == "ro"


@pytest.mark.parametrize(
    ("body", "version", "message"),
    [
        ({"instance_uuid": INSTANCE}, V44, "'volume_uuid' is a required property"),
        ({"volume_uuid": "nope"}, V44, "'nope' is not a 'uuid'"),
        ({"volume_uuid": VOLUME, "connector": "x"}, V44, "'x' is not of type 'object', 'null'"),
        ({"volume_uuid": VOLUME, "mode": "ro"}, V44, "('mode' was unexpected)"),
        ({"volume_uuid": VOLUME, "mode": "rx"}, V54, "'rx' is not one of ['rw', 'ro']"),
    ],
)
def test_create_body_refusals(body: dict[str, Any], version: Microversion, message: str) -> None:
    assert message in _message(parse_create, _value(body), True, version)


def test_update_body_needs_a_connector_of_one_key() -> None:
    assert parse_update(_value({"connector": CONNECTOR}), True) == CONNECTOR
    assert "'connector' is a required property" in _message(parse_update, _value({}), True)
    assert "should be non-empty" in _message(parse_update, _value({"connector": {}}), True)
    assert "'attachment' is a required property" in _message(parse_update, _value({}), False)


def test_legacy_attach_body() -> None:
    given = parse_attach(_value({"host_name": "My_Host.", "mountpoint": "/dev/vdb"}))
    assert (given.host_name, given.instance_uuid, given.mode) == ("my-host", None, "rw")
    assert "is not valid under any of the given schemas" in _message(
        parse_attach, _value({"mountpoint": "/dev/vdb"})
    )
    assert "'mountpoint' is a required property" in _message(
        parse_attach, _value({"instance_uuid": INSTANCE})
    )


def test_force_detach_body() -> None:
    given = parse_force_detach(_value({"attachment_id": None, "connector": None}))
    assert (given.attachment_id, given.connector) == (None, None)
    assert "('x' was unexpected)" in _message(parse_force_detach, _value({"x": 1}))
