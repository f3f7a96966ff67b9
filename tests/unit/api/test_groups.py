"""Group bodies (Cinder's group_types, groups and group_snapshots schemas and messages), the
views by microversion, and a group snapshot's status from its snapshots."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from cindermesh.db.models import Group, GroupSnapshot
from cindermesh.errors import InvalidInput
from services.api.edge.auth import Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.groups.body import (
    validate_group_create,
    validate_group_delete,
    validate_group_reset_status,
    validate_group_snapshot_reset_status,
    validate_group_source,
    validate_group_type_create,
    validate_group_type_update,
    validate_group_update,
)
from services.api.groups.snapshots import shown_status
from services.api.groups.views import GroupRecord, group_snapshot_summary, group_view

ID = "4b111d28-b73d-4908-9bd2-03dc2992e4d4"


def _struct(body: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(body)
    return struct


def _value(body: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    value.struct_value.SetInParent()
    value.struct_value.update(body)
    return value


def _message(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value.message


def test_group_type_bodies() -> None:
    given = validate_group_type_create(
        _struct({"group_type": {"name": "t", "is_public": "false", "group_specs": {"a": None}}})
    )
    assert (given.name, given.is_public, given.group_specs) == ("t", False, {"a": ""})
    assert _message(validate_group_type_create, _struct({"group_type": {}})) == (
        "Invalid input for field/attribute group_type. Value: {}. 'name' is a required property"
    )
    assert _message(validate_group_type_create, _struct({"group_type": {"name": " "}})) == (
        "An invalid 'name' value was provided. The 'name' can not be empty."
    )
    assert _message(validate_group_type_update, _struct({"group_type": {}})) == (
        "Specify group type name, description or a combination thereof."
    )
    assert _message(validate_group_type_update, _struct({"group_type": {"name": " "}})) == (
        "Group type name can not be empty."
    )


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"volume_types": ["a"]}, "Invalid input for field/attribute group. Value: "
         "{'volume_types': ['a']}. 'group_type' is a required property"),
        ({"group_type": "g", "volume_types": []}, "Invalid input for field/attribute "
         "volume_types. Value: []. [] is too short"),
        ({"group_type": "g", "volume_types": ["a", "a"]}, "Invalid input for field/attribute "
         "volume_types. Value: ['a', 'a']. ['a', 'a'] has non-unique elements"),
        ({"group_type": " ", "volume_types": ["a"]}, "Invalid input received: group_type has 0 "
         "characters, less than 1."),
        ({"group_type": "g", "volume_types": ["a"], "x": 1}, "Invalid input for field/attribute "
         "group. Value: {'group_type': 'g', 'volume_types': ['a'], 'x': 1}. Additional "
         "properties are not allowed ('x' was unexpected)"),
    ],
)  # fmt: skip
def test_group_create_refusals(group: dict[str, Any], message: str) -> None:
    assert _message(validate_group_create, _struct({"group": group})) == message


def test_group_create_and_update_read_cinders_fields() -> None:
    given = validate_group_create(
        _struct({"group": {"group_type": "g", "volume_types": ["a", "b"], "name": " n "}})
    )
    assert (given.name, given.volume_types, given.availability_zone) == ("n", ("a", "b"), None)
    change = validate_group_update(_struct({"group": {"add_volumes": "a,b,", "name": "x"}}))
    assert (change.add_volumes, change.remove_volumes, change.name) == (("a", "b"), (), "x")
    assert "is not valid under any of the given schemas" in _message(
        validate_group_update, _struct({"group": {}})
    )


def test_group_actions() -> None:
    assert validate_group_delete(_value({"delete-volumes": True})) is True
    assert validate_group_delete(_value({})) is False
    assert validate_group_reset_status(_value({"status": "Error"})) == "error"
    assert _message(validate_group_reset_status, _value({"status": "in-use"})) == (
        "Invalid Group Status: Group status: in-use is invalid, valid status are: ('error', "
        "'available', 'creating', 'deleting', 'deleted', 'updating', 'in-use', "
        "'error_deleting')."
    )
    assert _message(validate_group_snapshot_reset_status, _value({"status": "x"})) == (
        "Invalid GroupSnapshot Status: Group snapshot status: x is invalid, valid statuses are: "
        "('error', 'available', 'creating', 'deleting', 'deleted', 'updating', "
        "'error_deleting')."
    )
    source = validate_group_source(_value({"source_group_id": ID, "name": " c "}))
    assert (source.source_group_id, source.group_snapshot_id, source.name) == (ID, None, "c")
    both = {"source_group_id": ID, "group_snapshot_id": ID}
    assert "is valid under each of" in _message(validate_group_source, _value(both))
    assert "is not valid under any of the given schemas" in _message(
        validate_group_source, _value({"name": "c"})
    )


def _ctx(minor: int) -> RequestContext:
    return RequestContext(Caller("u", "p"), Microversion(3, minor), "http://h", True)


GROUP = Group(
    id=ID, project_id="p", user_id="u", name="g", status="available", availability_zone="nova",
    group_type_id="t", created_at=dt.datetime(2026, 1, 2, 3, 4, 5),
)  # fmt: skip
BASE = {"id", "name", "status", "availability_zone", "created_at", "description", "group_type",
        "volume_types"}  # fmt: skip


@pytest.mark.parametrize(
    ("minor", "volumes", "added"),
    [
        (13, None, set()),
        (14, None, {"group_snapshot_id", "source_group_id"}),
        (25, ["v"], {"group_snapshot_id", "source_group_id", "volumes"}),
        (38, None, {"group_snapshot_id", "source_group_id", "replication_status"}),
    ],
)
def test_group_view_by_microversion(minor: int, volumes: list[str] | None, added: set[str]) -> None:
    view = group_view(_ctx(minor), GroupRecord(GROUP, ["vt"], volumes))
    shown = MessageToDict(view, preserving_proto_field_name=True)
    assert set(shown) == BASE | added
    assert shown["volume_types"] == ["vt"] and shown["created_at"] == "2026-01-02T03:04:05.000000"


def test_group_snapshot_status_follows_its_snapshots_until_reset() -> None:
    row = GroupSnapshot(project_id="p", user_id="u", group_id=ID, group_type_id="t")
    assert shown_status(row, ["available", "creating"]) == "creating"
    assert shown_status(row, ["available", "error"]) == "error"
    assert shown_status(row, ["available", "available"]) == "available"
    row.status_from_snapshots = False
    row.status = "creating"
    assert shown_status(row, ["available"]) == "creating"
    summary = MessageToDict(group_snapshot_summary(row, with_type=False))
    assert set(summary) == {"id", "name"}
