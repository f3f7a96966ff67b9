"""Volume-type create body: Cinder's schema messages, table-driven."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format, struct_pb2

from cindermesh.errors import InvalidInput
from services.api.types.body import TypeCreateInput, validate_type_create


def _body(text: str) -> struct_pb2.Struct:
    return json_format.Parse(text, struct_pb2.Struct())


BOOLEANS = "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']"

REFUSED = [
    ("{}", "'volume_type' is a required property"),
    ('{"volume_type": "x"}', "Invalid input for field/attribute volume_type. Value: x. 'x' is not of type 'object'"),
    ('{"volume_type": null}', "Invalid input for field/attribute volume_type. Value: None. None is not of type 'object'"),
    ('{"volume_type": {}}', "Invalid input for field/attribute volume_type. Value: {}. 'name' is a required property"),
    ('{"volume_type": {"description": "d"}}', "Invalid input for field/attribute volume_type. Value: {'description': 'd'}. 'name' is a required property"),
    ('{"volume_type": {"name": 5}}', "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"),
    ('{"volume_type": {"name": null}}', "Invalid input for field/attribute name. Value: None. None is not of type 'string'"),
    ('{"volume_type": {"name": ""}}', "Invalid input for field/attribute name. Value: . '' should be non-empty"),
    ('{"volume_type": {"name": "   "}}', "An invalid 'name' value was provided. The 'name' can not be empty."),
    ('{"volume_type": {"name": "' + "n" * 256 + '"}}', f"Invalid input for field/attribute name. Value: {'n' * 256}. '{'n' * 256}' is too long"),
    ('{"volume_type": {"name": "a", "description": 1}}', "Invalid input for field/attribute description. Value: 1. 1 is not of type 'string', 'null'"),
    ('{"volume_type": {"name": "a", "extra_specs": "x"}}', "Invalid input for field/attribute extra_specs. Value: x. 'x' is not of type 'object'"),
    ('{"volume_type": {"name": "a", "extra_specs": {"k": 1}}}', "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string', 'null'"),
    ('{"volume_type": {"name": "a", "extra_specs": {"k!": "v"}}}', "Invalid input for field/attribute extra_specs. Value: {'k!': 'v'}. 'k!' does not match any of the regexes: '^[a-zA-Z0-9-_:. /]{1,255}$'"),
    ('{"volume_type": {"name": "a", "os-volume-type-access:is_public": 1}}', "Invalid input for field/attribute os-volume-type-access:is_public. Value: 1. 1 is not of type 'boolean', 'string'"),
    ('{"volume_type": {"name": "a", "os-volume-type-access:is_public": "maybe"}}', f"Invalid input for field/attribute os-volume-type-access:is_public. Value: maybe. 'maybe' is not one of {BOOLEANS}"),
    ('{"volume_type": {"name": "a", "is_public": true}}', "Invalid input for field/attribute volume_type. Value: {'is_public': True, 'name': 'a'}. Additional properties are not allowed ('is_public' was unexpected)"),
    ('{"volume_type": {"name": "a", "z": 1, "b": 2}}', "Invalid input for field/attribute volume_type. Value: {'b': 2, 'name': 'a', 'z': 1}. Additional properties are not allowed ('b', 'z' were unexpected)"),
    ('{"volume_type": {"name": "a"}, "foo": 1}', "Additional properties are not allowed ('foo' was unexpected)"),
    # The properties are checked before `required` and unknown keys; objects print sorted.
    ('{"volume_type": {"bogus": 1, "description": 5}}', "Invalid input for field/attribute description. Value: 5. 5 is not of type 'string', 'null'"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), REFUSED)
def test_refused_with_cinders_message(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_type_create(_body(body))
    assert raised.value.message == message


ACCEPTED = [
    ('{"volume_type": {"name": "gold"}}', TypeCreateInput("gold")),
    (
        json.dumps(
            {
                "volume_type": {
                    "name": "gold",
                    "description": "fast",
                    "extra_specs": {"volume_backend_name": "file-1", "k": None},
                    "os-volume-type-access:is_public": "false",
                }
            }
        ),
        TypeCreateInput("gold", "fast", {"volume_backend_name": "file-1", "k": ""}, False),
    ),
    ('{"volume_type": {"name": "g", "description": null, "os-volume-type-access:is_public": true}}', TypeCreateInput("g")),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), ACCEPTED)
def test_accepted(body: str, expected: TypeCreateInput) -> None:
    assert validate_type_create(_body(body)) == expected
