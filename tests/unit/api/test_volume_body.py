"""Create-body validation: Cinder's messages, table-driven (the golden ones included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from cindermesh.errors import InvalidInput
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.microversion import MIN_VERSION, Microversion
from services.api.volumes.body import validate_create

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def _parse(body: str) -> api_pb2.VolumeCreate:
    # The gateway drops unknown fields, as json_format does with ignore_unknown_fields.
    return json_format.Parse(body, api_pb2.VolumeCreate(), ignore_unknown_fields=True)


REFUSED = [
    ('{"size": 0}', "Invalid input for field/attribute size. Value: 0. 0 is less than the minimum of 1"),
    ('{"size": -1}', "Invalid input for field/attribute size. Value: -1. -1 is less than the minimum of 1"),
    ('{"size": "0"}', "Invalid input for field/attribute size. Value: 0. 0 is less than the minimum of 1"),
    ('{"size": "abc"}', "Invalid input for field/attribute size. Value: abc. 'abc' does not match '^[0-9]+$'"),
    ('{"size": "1.5"}', "Invalid input for field/attribute size. Value: 1.5. '1.5' does not match '^[0-9]+$'"),
    ('{"size": 1.5}', "Invalid input for field/attribute size. Value: 1.5. 1.5 is not of type 'integer', 'string', 'null'"),
    ('{"size": true}', "Invalid input for field/attribute size. Value: True. True is not of type 'integer', 'string', 'null'"),
    ('{"size": 2147483648}', "Invalid input for field/attribute size. Value: 2147483648. 2147483648 is greater than the maximum of 2147483647"),
    ('{"size": 1, "name": 5}', "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string', 'null'"),
    ('{"size": 1, "metadata": {"k": 1}}', "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
    ('{"size": 1, "metadata": {"k!": "v"}}', "Invalid input for field/attribute metadata. Value: {'k!': 'v'}. 'k!' does not match any of the regexes: '^[a-zA-Z0-9-_:. /]{1,255}$'"),
    ('{"size": 1, "metadata": "x"}', "Invalid input for field/attribute metadata. Value: x. 'x' is not of type 'object', 'null'"),
    ('{"size": 1, "snapshot_id": "abc"}', "Invalid input for field/attribute snapshot_id. Value: abc. 'abc' is not valid under any of the given schemas"),
    ('{"size": 1, "availability_zone": ""}', "Invalid input for field/attribute availability_zone. Value: . '' should be non-empty"),
    ('{"size": 1, "name": "' + "x" * 256 + '"}', "Invalid input received: name has 256 characters, more than 255."),
    ('{"size": 1, "description": "' + "d" * 300 + '"}', "Invalid input received: description has 300 characters, more than 255."),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), REFUSED)
def test_refused_with_cinders_message(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_create(_parse(body), MIN_VERSION)
    assert raised.value.message == message


@pytest.mark.parametrize(
    "name",
    ["err-size-0", "err-size-abc", "err-size-float", "err-size-negative", "err-name-too-long"],
)
def test_golden_messages(name: str) -> None:
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    body = json.dumps(golden["request"]["body"]["volume"])
    with pytest.raises(InvalidInput) as raised:
        validate_create(_parse(body), MIN_VERSION)
    assert raised.value.message == golden["body"]["badRequest"]["message"]


def test_accepts_what_cinderclient_sends() -> None:
    body = (
        '{"size": "2", "name": "  a  ", "consistencygroup_id": null, "snapshot_id": null,'
        ' "description": null, "volume_type": null, "availability_zone": null,'
        ' "imageRef": null, "source_volid": null, "backup_id": null, "metadata": {},'
        ' "multiattach": false, "bogus": 1}'
    )
    parsed = validate_create(_parse(body), MIN_VERSION)
    assert parsed.size == 2
    assert parsed.name == "a"
    assert parsed.description is None
    assert parsed.metadata == {}
    assert parsed.multiattach is False


def test_missing_size_is_left_to_the_flow() -> None:
    assert validate_create(_parse("{}"), MIN_VERSION).size is None


def test_group_id_only_from_3_13() -> None:
    body = _parse('{"size": 1, "group_id": "g"}')
    assert validate_create(body, MIN_VERSION).group_id is None
    assert validate_create(body, Microversion(3, 13)).group_id == "g"


def test_display_name_is_an_alias() -> None:
    parsed = validate_create(_parse('{"size": 1, "display_name": "old"}'), MIN_VERSION)
    assert parsed.name == "old"
