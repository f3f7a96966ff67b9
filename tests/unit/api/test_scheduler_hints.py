"""``OS-SCH-HNT:scheduler_hints`` as Cinder's schema checks it, and what placement keeps."""

from __future__ import annotations

import json

import pytest
from google.protobuf import struct_pb2
from google.protobuf.json_format import Parse

from cindermesh.errors import InvalidInput
from cindermesh.scheduler_hints import SchedulerHints
from services.api.volumes.body import parse_scheduler_hints

A = "0b5a4a6e-9c3f-4f7e-9a55-3a4a1f0b3b10"
B = "7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"


def _value(hints: object) -> struct_pb2.Value:
    return Parse(json.dumps(hints), struct_pb2.Value())


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        (None, SchedulerHints()),
        ({}, SchedulerHints()),
        ({"same_host": A}, SchedulerHints(same_host=(A,))),
        ({"different_host": [A, B]}, SchedulerHints(different_host=(A, B))),
        ({"different_host": []}, SchedulerHints()),
        (
            {"query": '["=", "$free_capacity_gb", 5]'},
            SchedulerHints(query='["=", "$free_capacity_gb", 5]'),
        ),
        ({"query": {"a": 1}}, SchedulerHints(query='{"a": 1}')),
        # Cinder's schema allows any other key; no filter of ours reads it.
        ({"local_to_instance": A, "anything": 1}, SchedulerHints()),
    ],
)
def test_hints_kept(hints: object, expected: SchedulerHints) -> None:
    assert parse_scheduler_hints(_value(hints)) == expected


@pytest.mark.parametrize(
    ("hints", "field"),
    [
        ({"same_host": "not-a-uuid"}, "OS-SCH-HNT:scheduler_hints/same_host"),
        ({"different_host": [A, A]}, "OS-SCH-HNT:scheduler_hints/different_host"),
        ({"different_host": [A, 3]}, "OS-SCH-HNT:scheduler_hints/different_host"),
        ({"same_host": 5}, "OS-SCH-HNT:scheduler_hints/same_host"),
        ({"local_to_instance": "x"}, "OS-SCH-HNT:scheduler_hints/local_to_instance"),
        ({"query": 5}, "OS-SCH-HNT:scheduler_hints/query"),
        ("text", "OS-SCH-HNT:scheduler_hints"),
    ],
)
def test_bad_hints_are_cinders_400(hints: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_scheduler_hints(_value(hints))
    assert refused.value.message.startswith(f"Invalid input for field/attribute {field}. ")


def test_row_text_round_trip() -> None:
    hints = SchedulerHints(same_host=(A,), different_host=(B,), query="[]")
    assert SchedulerHints.from_text(hints.to_text()) == hints
    assert SchedulerHints().to_text() is None
    assert SchedulerHints.from_text(None) == SchedulerHints()
