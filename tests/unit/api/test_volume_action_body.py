"""The volume actions' bodies: Cinder's schemas and controllers' parsing, with its messages."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from cindermesh.errors import InvalidInput
from services.api.schema import JsonValue
from services.api.volume_actions.body import (
    StatusReset,
    parse_bootable,
    parse_extend,
    parse_readonly,
    parse_reset_status,
    parse_retype,
    parse_revert,
)


def value(python: JsonValue) -> struct_pb2.Value:
    result = struct_pb2.Value()
    if python is None:
        result.null_value = struct_pb2.NULL_VALUE
    else:
        wrapper = struct_pb2.Struct()
        wrapper.update({"v": python})
        result.CopyFrom(wrapper.fields["v"])
    return result


@pytest.mark.parametrize(
    ("body", "size"), [({"new_size": 2}, 2), ({"new_size": "10"}, 10), ({"new_size": "0"}, 0)]
)
def test_extend_sizes(body: JsonValue, size: int) -> None:
    assert parse_extend(value(body)) == size


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (5, "Invalid input for field/attribute os-extend. Value: 5. 5 is not of type 'object'"),
        ({}, "Invalid input for field/attribute os-extend. Value: {}. 'new_size' is a required property"),
        ({"new_size": 0}, "Invalid input for field/attribute new_size. Value: 0. 0 is less than the minimum of 1"),
        ({"new_size": -1}, "Invalid input for field/attribute new_size. Value: -1. -1 is less than the minimum of 1"),
        ({"new_size": 1.5}, "Invalid input for field/attribute new_size. Value: 1.5. 1.5 is not of type 'integer', 'string'"),
        ({"new_size": "1.5"}, "Invalid input for field/attribute new_size. Value: 1.5. '1.5' does not match '^[0-9]+$'"),
        ({"new_size": 2147483648}, "Invalid input for field/attribute new_size. Value: 2147483648. 2147483648 is greater than the maximum of 2147483647"),
        ({"new_size": 2, "y": 1}, "Invalid input for field/attribute os-extend. Value: {'new_size': 2, 'y': 1}. Additional properties are not allowed ('y' was unexpected)"),
    ],
)  # fmt: skip
def test_extend_refusals(body: JsonValue, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_extend(value(body))
    assert refused.value.message == message


def test_reset_status_lowercases_and_none_clears_migration() -> None:
    reset = parse_reset_status(value({"status": "ERROR", "migration_status": "None"}))
    assert reset == StatusReset(status="error", set_migration_status=True)
    assert reset.values() == {"status": "error", "migration_status": None}
    assert parse_reset_status(value({"attach_status": "Attached"})).values() == {
        "attach_status": "attached"
    }


@pytest.mark.parametrize(
    ("body", "start"),
    [
        ({}, "Must specify 'status', 'attach_status' or 'migration_status' for update."),
        ({"status": ""}, "Must specify 'status', 'attach_status' or 'migration_status'"),
        ({"status": "x"}, "Volume status: x is invalid, valid statuses are: ('creating', "),
        ({"migration_status": "x"}, "Volume migration status: x is invalid, valid statuses are: ('migrating', "),
        ({"status": 1}, "Invalid input for field/attribute status. Value: 1. 1 is not of type 'string', 'null'"),
        ({"status": "error", "other": 1}, "Invalid input for field/attribute os-reset_status."),
    ],
)  # fmt: skip
def test_reset_status_refusals(body: JsonValue, start: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reset_status(value(body))
    assert refused.value.message.startswith(start)


def test_flags() -> None:
    assert parse_bootable(value({"bootable": "yes"})) is True
    assert parse_bootable(value({"bootable": False})) is False
    assert parse_readonly(value({"readonly": "0"})) is False
    with pytest.raises(InvalidInput) as refused:
        parse_readonly(value({}))
    assert refused.value.message == (
        "Invalid input for field/attribute os-update_readonly_flag. Value: {}. 'readonly' is a "
        "required property"
    )


def test_retype() -> None:
    assert parse_retype(value({"new_type": "gold"})) == ("gold", None)
    assert parse_retype(value({"new_type": "gold", "migration_policy": "on-demand"})) == (
        "gold",
        "on-demand",
    )
    with pytest.raises(InvalidInput) as refused:
        parse_retype(value({"new_type": "gold", "migration_policy": None}))
    assert refused.value.message == (
        "Invalid input for field/attribute migration_policy. Value: None. None is not one of "
        "['on-demand', 'never']"
    )
    with pytest.raises(InvalidInput) as refused:
        parse_retype(value({"new_type": 5}))
    assert refused.value.message == (
        "Invalid input for field/attribute new_type. Value: 5. 5 is not of type 'string'"
    )


def test_revert_allows_other_keys() -> None:
    assert parse_revert(value({"snapshot_id": "s", "other": 1})) == "s"
    assert parse_revert(value({})) is None
    with pytest.raises(InvalidInput):
        parse_revert(value({"snapshot_id": 3}))
