"""Snapshot bodies (create, update, the actions) with Cinder's messages, and the snapshot view
by microversion and role, table-driven."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from google.protobuf import json_format, struct_pb2

from cindermesh.db.models import Snapshot, Volume
from cindermesh.db.quota import snapshot_deltas
from cindermesh.errors import InvalidInput, InvalidVolume
from cindermesh.settings import QuotaSettings
from services.api.edge.auth import ADMIN_ROLES, MEMBER_ROLES, Caller
from services.api.edge.microversion import MIN_VERSION, Microversion
from services.api.edge.request_context import RequestContext
from services.api.snapshots.body import (
    SNAPSHOT_IN_USE_FLAG_MSG,
    parse_create,
    parse_reset_status,
    parse_update,
    parse_update_status,
)
from services.api.snapshots.operations import check_volume
from services.api.snapshots.views import SnapshotRecord, snapshot_view

VOLUME = "8c6f4b2e-5a3d-4e1f-9b7c-0d2e1f3a4b5c"


def _value(text: str) -> struct_pb2.Value:
    return json_format.Parse(text, struct_pb2.Value())


CREATE_REFUSED = [
    ('{"name": "x"}', "Invalid input for field/attribute snapshot. Value: {'name': 'x'}. 'volume_id' is a required property"),
    ('{"volume_id": "abc"}', "Invalid input for field/attribute volume_id. Value: abc. 'abc' is not valid under any of the given schemas"),
    (f'{{"volume_id": "{VOLUME}", "name": 5}}', "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string', 'null'"),
    (f'{{"volume_id": "{VOLUME}", "name": "{"n" * 256}"}}', f"Invalid input for field/attribute name. Value: {'n' * 256}. '{'n' * 256}' is too long"),
    (f'{{"volume_id": "{VOLUME}", "force": "maybe"}}', "Invalid input for field/attribute force. Value: maybe. 'maybe' is not one of"),
    (f'{{"volume_id": "{VOLUME}", "metadata": {{"k": 1}}}}', "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
    (f'{{"volume_id": "{VOLUME}", "colour": "red"}}', "Invalid input for field/attribute snapshot. Value: {'colour': 'red', 'volume_id': '" + VOLUME + "'}. Additional properties are not allowed ('colour' was unexpected)"),
    ('"text"', "Invalid input for field/attribute snapshot. Value: text. 'text' is not of type 'object'"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), CREATE_REFUSED)
def test_create_refused_with_cinders_message(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_create(_value(body), True, MIN_VERSION)
    assert raised.value.message.startswith(message)


def test_create_without_a_body_is_cinders_required_property() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_create(struct_pb2.Value(), False, MIN_VERSION)
    assert raised.value.message == "'snapshot' is a required property"


@pytest.mark.parametrize(
    ("body", "version", "allow_in_use"),
    [
        (f'{{"volume_id": "{VOLUME}"}}', MIN_VERSION, False),
        (f'{{"volume_id": "{VOLUME}", "force": "true"}}', MIN_VERSION, True),
        (f'{{"volume_id": "{VOLUME}", "force": false}}', Microversion(3, 65), False),
        (f'{{"volume_id": "{VOLUME}"}}', Microversion(3, 66), True),
        (f'{{"volume_id": "{VOLUME}", "force": true}}', Microversion(3, 66), True),
    ],
)
def test_force_and_in_use(body: str, version: Microversion, allow_in_use: bool) -> None:
    assert parse_create(_value(body), True, version).allow_in_use is allow_in_use


def test_force_false_from_3_66_is_refused() -> None:
    body = _value(f'{{"volume_id": "{VOLUME}", "force": false}}')
    with pytest.raises(InvalidInput) as raised:
        parse_create(body, True, Microversion(3, 66))
    assert raised.value.message == SNAPSHOT_IN_USE_FLAG_MSG


def test_create_names_are_stripped_and_name_wins() -> None:
    body = f'{{"volume_id": "{VOLUME}", "name": " a ", "display_name": "b", "description": " d "}}'
    parsed = parse_create(_value(body), True, MIN_VERSION)
    assert (parsed.name, parsed.description) == ("a", "d")
    null = parse_create(_value('{"volume_id": null}'), True, MIN_VERSION)
    assert null.volume_id is None


UPDATE_CASES = [
    ('{"name": "n"}', ("n", False, None)),
    ('{"display_name": "n", "name": "m"}', ("m", False, None)),
    ('{"display_description": "d"}', (None, True, "d")),
    ('{"description": null}', (None, True, None)),
]


@pytest.mark.parametrize(("body", "expected"), UPDATE_CASES)
def test_update(body: str, expected: tuple[str | None, bool, str | None]) -> None:
    change = parse_update(_value(body), True)
    assert (change.name, change.set_description, change.description) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "Invalid input for field/attribute snapshot. Value: {}. {} is not valid under any of the given schemas"),
        ('{"size": 1}', "Invalid input for field/attribute snapshot. Value: {'size': 1}. Additional properties are not allowed ('size' was unexpected)"),
    ],
)  # fmt: skip
def test_update_refused(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_update(_value(body), True)
    assert raised.value.message == message


def test_reset_status() -> None:
    assert parse_reset_status(_value('{"status": "ERROR"}'), True) == "error"
    with pytest.raises(InvalidInput) as raised:
        parse_reset_status(_value('{"status": "bogus"}'), True)
    assert raised.value.message == (
        "Snapshot status: bogus is invalid, valid statuses are: ('error', 'available', "
        "'creating', 'deleting', 'deleted', 'updating', 'error_deleting', 'unmanaging', "
        "'backing-up', 'restoring')."
    )
    with pytest.raises(InvalidInput) as missing:
        parse_reset_status(_value("{}"), True)
    assert missing.value.message == (
        "Invalid input for field/attribute os-reset_status. Value: {}. 'status' is a required "
        "property"
    )


@pytest.mark.parametrize(
    ("progress", "message"),
    [
        ("abc", "Invalid input received: progress must be an integer percentage"),
        ("101%", "Invalid input received: progress must be an integer percentage between 0 and 100"),
        ("50", "Invalid input received: progress must be an integer percentage between 0 and 100"),
    ],
)  # fmt: skip
def test_update_status_progress(progress: str, message: str) -> None:
    body = _value(json.dumps({"status": "available", "progress": progress}))
    with pytest.raises(InvalidInput) as raised:
        parse_update_status(body, True)
    assert raised.value.message == message


def test_update_status() -> None:
    update = parse_update_status(_value('{"status": "error", "progress": "80%"}'), True)
    assert (update.status, update.progress) == ("error", "80%")


def _snapshot() -> Snapshot:
    return Snapshot(
        id="s1",
        project_id="p1",
        user_id="u1",
        volume_id=VOLUME,
        name="n",
        status="available",
        progress="100%",
        volume_size=3,
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5),
    )


BASE_KEYS = {
    "id", "created_at", "updated_at", "name", "description", "volume_id", "status", "size",
    "metadata",
}  # fmt: skip
#: The proto names of the fields the gateway shows as ``os-extended-snapshot-attributes:*``.
EXTENDED = {
    "os_extended_snapshot_attributes_project_id",
    "os_extended_snapshot_attributes_progress",
}


@pytest.mark.parametrize(
    ("minor", "extended", "keys"),
    [
        (0, False, BASE_KEYS),
        (0, True, BASE_KEYS | EXTENDED),
        (14, False, BASE_KEYS | {"group_snapshot_id"}),
        (41, False, BASE_KEYS | {"group_snapshot_id", "user_id"}),
        (65, True, BASE_KEYS | {"group_snapshot_id", "user_id", "consumes_quota"} | EXTENDED),
    ],
)
def test_view_fields_by_microversion(minor: int, extended: bool, keys: set[str]) -> None:
    ctx = RequestContext(Caller("u1", "p1", MEMBER_ROLES), Microversion(3, minor), "http://g", True)
    view = snapshot_view(ctx, SnapshotRecord(_snapshot(), {"k": "v"}), extended)
    shown = json_format.MessageToDict(
        view, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert set(shown) == keys
    assert (shown["size"], shown["metadata"]) == (3, {"k": "v"})
    assert shown["created_at"] == "2026-01-02T03:04:05.000000"
    assert shown["description"] is None


def test_view_extended_attributes_follow_the_policy() -> None:
    other_project = RequestContext(Caller("u9", "p9", frozenset()), MIN_VERSION, "http://g", True)
    view = snapshot_view(other_project, SnapshotRecord(_snapshot(), {}), extended=True)
    assert not view.HasField("os_extended_snapshot_attributes_progress")
    admin = RequestContext(Caller("admin", "p9", ADMIN_ROLES), MIN_VERSION, "http://g", True)
    view = snapshot_view(admin, SnapshotRecord(_snapshot(), {}), extended=True)
    assert view.os_extended_snapshot_attributes_project_id == "p1"
    assert view.os_extended_snapshot_attributes_progress == "100%"


@pytest.mark.parametrize(
    ("no_gb", "deltas"),
    [
        (False, {"snapshots": 1, "snapshots_t": 1, "gigabytes": 4, "gigabytes_t": 4}),
        (True, {"snapshots": 1, "snapshots_t": 1}),
    ],
)
def test_snapshot_quota_deltas(no_gb: bool, deltas: dict[str, int]) -> None:
    """Cinder's ``_create_snapshot_in_db`` counts, with ``no_snapshot_gb_quota``."""
    assert snapshot_deltas(4, "t", QuotaSettings(no_snapshot_gb_quota=no_gb)) == deltas


def _volume(status: str, host: str | None = "h@b#p") -> Volume:
    return Volume(
        id=VOLUME, project_id="p", user_id="u", size=1, availability_zone="nova",
        volume_type_id="t", status=status, host=host,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("volume", "allow_in_use", "message"),
    [
        (_volume("available", host=None), False, "Invalid volume: The snapshot cannot be created because volume has not been scheduled to any host."),
        (_volume("error"), False, "Invalid volume: The snapshot cannot be created when the volume is in error status."),
        (_volume("maintenance"), False, "Invalid volume: The snapshot cannot be created when the volume is in maintenance mode."),
        (_volume("in-use"), False, f"Invalid volume: Volume {VOLUME} status must be available, but current status is: in-use."),
        (_volume("creating"), True, f"Invalid volume: Volume {VOLUME} status must be available, in-use, but current status is: creating."),
    ],
)  # fmt: skip
def test_volume_states_refused(volume: Volume, allow_in_use: bool, message: str) -> None:
    with pytest.raises(InvalidVolume) as raised:
        check_volume(volume, allow_in_use)
    assert raised.value.message == message


def test_volume_states_allowed() -> None:
    check_volume(_volume("available"), allow_in_use=False)
    check_volume(_volume("in-use"), allow_in_use=True)
