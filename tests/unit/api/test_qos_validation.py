"""The QoS specs bodies and the quota class body, with Cinder's messages."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2

from cindermesh.errors import InvalidInput
from services.api.qos.body import (
    check_consumer,
    qos_create_input,
    validate_qos_create,
    validate_qos_set,
    validate_qos_unset,
)
from services.api.quotas.quota_sets import resource_names, validate_class_update


def _struct(body: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(body)
    return struct


def _message(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value.message


def test_create_takes_the_consumer_out_and_strips_the_name() -> None:
    sent = validate_qos_create(
        _struct({"qos_specs": {"name": " q ", "consumer": "both", "a": "1"}})
    )
    given = qos_create_input(sent)
    assert (given.name, given.consumer, given.specs) == ("q", "both", {"a": "1"})
    assert qos_create_input({"name": "q", "b": None}).consumer == "back-end"
    assert qos_create_input({"name": "q", "b": None}).specs == {"b": None}
    assert qos_create_input({"name": "q", "consumer": ""}).specs == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'qos_specs' is a required property"),
        ({"qos_specs": []}, "Invalid input for field/attribute qos_specs. Value: []. [] is not "
         "of type 'object'"),
        ({"qos_specs": {}}, "Invalid input for field/attribute qos_specs. Value: {}. 'name' is "
         "a required property"),
        ({"qos_specs": {"name": ""}}, "An invalid 'name' value was provided. The 'name' can not "
         "be None."),
        ({"qos_specs": {"name": "  "}}, "An invalid 'name' value was provided. The 'name' can "
         "not be empty."),
        ({"qos_specs": {"name": "n" * 256}}, "An invalid 'name' value was provided. The 'name' "
         "can not be greater than 255 characters."),
        ({"qos_specs": {"name": "q"}, "other": 1}, "Additional properties are not allowed "
         "('other' was unexpected)"),
    ],
)  # fmt: skip
def test_create_schema(body: dict[str, Any], message: str) -> None:
    assert _message(validate_qos_create, _struct(body)) == message


def test_create_specs_lengths_and_consumer() -> None:
    assert _message(qos_create_input, {"name": "q", "k": 1}) == (
        'Invalid input received: Value for key "k" is not a string or unicode'
    )
    assert _message(qos_create_input, {"name": "q", "k" * 256: "v"}) == (
        f'Invalid input received: Key "{"k" * 256}" has 256 characters, more than 255.'
    )
    assert _message(qos_create_input, {"name": "q", "": "v"}) == (
        'Invalid input received: Key "" has 0 characters, less than 1.'
    )
    message = _message(check_consumer, "middle")
    assert message.startswith("Invalid qos specs: Valid consumer of QoS specs are: ")
    assert "valid_values=('back-end', 'front-end', 'both')" in message
    assert check_consumer(None) == "back-end"


def test_set_keeps_nulls_and_checks_the_extra_specs_rule() -> None:
    assert validate_qos_set(_struct({"qos_specs": {"a": "1", "b": None}})) == {
        "a": "1",
        "b": None,
    }
    assert _message(validate_qos_set, _struct({"qos_specs": {"a": 1}})) == (
        "Invalid input for field/attribute a. Value: 1. 1 is not of type 'string', 'null'"
    )
    assert _message(validate_qos_set, _struct({"x": {}})) == "'qos_specs' is a required property"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'keys' is a required property"),
        ({"keys": {}}, "Invalid input for field/attribute keys. Value: {}. {} is not of type "
         "'array'"),
        ({"keys": ["a", ""]}, "Invalid input for field/attribute 1. Value: . '' should be "
         "non-empty"),
        ({"keys": ["k" * 256]}, f"Invalid input for field/attribute 0. Value: {'k' * 256}. "
         f"'{'k' * 256}' is too long"),
        ({"keys": ["a", "a"]}, "Invalid input for field/attribute keys. Value: ['a', 'a']. "
         "['a', 'a'] has non-unique elements"),
        ({"keys": ["a"], "x": 1}, "Additional properties are not allowed ('x' was unexpected)"),
    ],
)  # fmt: skip
def test_unset_schema(body: dict[str, Any], message: str) -> None:
    assert _message(validate_qos_unset, _struct(body)) == message


def test_unset_answers_the_keys() -> None:
    assert validate_qos_unset(_struct({"keys": ["a", "b"]})) == ["a", "b"]


KNOWN = resource_names(["gold"])


def test_class_update_values() -> None:
    got = validate_class_update({"volumes": "5", "gigabytes": -1, "volumes_gold": 0}, True, KNOWN)
    assert got == {"volumes": 5, "gigabytes": -1, "volumes_gold": 0}
    assert validate_class_update({}, True, KNOWN) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"volumes": 1.5}, "Invalid input for field/attribute volumes. Value: 1.5. 1.5 is not "
         "of type 'integer', 'string'"),
        ({"volumes": "99999999999"}, "Invalid input for field/attribute volumes. Value: "
         "99999999999. 99999999999 is greater than the maximum of 2147483647"),
        ({"nope": "x", "volumes": "bad"}, "Invalid input received: Bad key(s) in quota class "
         "set: nope"),
        (None, "Invalid input for field/attribute quota_class_set. Value: None. None is not of "
         "type 'object'"),
    ],
)  # fmt: skip
def test_class_update_errors(value: Any, message: str) -> None:
    assert _message(validate_class_update, value, True, KNOWN) == message


def test_class_update_requires_the_key() -> None:
    assert _message(validate_class_update, None, False, KNOWN) == (
        "'quota_class_set' is a required property"
    )
