"""The placement decision's stored form (``cindermesh.placement``): the JSON round
trip, its stable text, and which filter removed the last candidate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from cindermesh.placement import (
    RESULTS,
    FilterOutcome,
    PlacementAttempt,
    WeighedOutcome,
    from_json,
    last_filter_of,
    to_json,
)

A = "node1@file-1#file-1"
B = "node1@file-2#file-2"
C = "node2@file-3#file-3"

AZ = FilterOutcome("AvailabilityZoneFilter", 3, (A, B), ((C, "Availability zone mismatch"),))
CAPACITY = FilterOutcome("CapacityFilter", 2, (A,), ((B, "Insufficient free space"),))
CAPABILITIES_NONE = FilterOutcome("CapabilitiesFilter", 1, (), ((A, "extra specs mismatch"),))


def attempt(**changes: object) -> PlacementAttempt:
    base = PlacementAttempt(
        attempt=2,
        decided_at=dt.datetime(2026, 12, 2, 20, 15, 1, 123456),
        scheduler="127.0.0.1:18777",
        request={
            "size_gb": 10,
            "availability_zone": "az1",
            "volume_type": "gold",
            "extra_specs": {"capabilities:x": "<in> y"},
            "scheduler_hints": {"different_host": ["v9"]},
        },
        disabled=("node3@file-4",),
        filters=(AZ, CAPACITY),
        weighed=(WeighedOutcome(A, 1.5, {"CapacityWeigher": 1.0, "VolumeNumberWeigher": 0.5}),),
        chosen=A,
        result="placed",
        reason="",
        last_filter=None,
        retry_hosts=(B,),
        last_error="manager of node1@file-2 refused the volume",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_round_trip_gives_the_same_attempt() -> None:
    placed = attempt()
    assert from_json(to_json(placed)) == placed


def test_round_trip_of_a_failure_with_nones() -> None:
    failed = attempt(
        attempt=1,
        filters=(AZ, CAPACITY, CAPABILITIES_NONE),
        weighed=(),
        chosen=None,
        result="no_valid_backend",
        reason="No valid backend was found. No weighed backends available",
        last_filter="CapabilitiesFilter",
        retry_hosts=(),
        last_error="",
        disabled=(),
    )
    back = from_json(to_json(failed))
    assert back == failed
    assert back.chosen is None and back.last_filter == "CapabilitiesFilter"
    assert isinstance(back.filters[2].rejected[0], tuple)


def test_text_is_stable_with_sorted_keys() -> None:
    text = to_json(attempt())
    assert text == to_json(attempt())
    document = json.loads(text)
    assert list(document) == sorted(document)
    assert document["decided_at"] == "2026-12-02T20:15:01.123456"
    assert document["scheduler"] == "127.0.0.1:18777"
    assert document["filters"][0] == {
        "name": "AvailabilityZoneFilter",
        "hosts_in": 3,
        "passed": [A, B],
        "rejected": [[C, "Availability zone mismatch"]],
    }
    assert document["weighed"][0]["weights"] == {
        "CapacityWeigher": 1.0,
        "VolumeNumberWeigher": 0.5,
    }
    # A re-read attempt stores as the same text.
    assert to_json(from_json(text)) == text


def test_weights_that_are_integers_read_back_as_floats() -> None:
    text = to_json(attempt(weighed=(WeighedOutcome(A, 1, {"CapacityWeigher": 1}),)))
    (weighed,) = from_json(text).weighed
    assert isinstance(weighed.weight, float)
    assert isinstance(weighed.weights["CapacityWeigher"], float)


@pytest.mark.parametrize(
    "text", ["", "[]", "{}", '{"attempt": 1}', json.dumps({"attempt": "x"}), "not json"]
)
def test_what_is_not_a_stored_attempt_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a stored placement attempt"):
        from_json(text)


def test_last_filter_is_the_first_that_passed_nothing() -> None:
    assert last_filter_of([]) is None
    assert last_filter_of([AZ, CAPACITY]) is None
    assert last_filter_of([AZ, CAPACITY, CAPABILITIES_NONE]) == "CapabilitiesFilter"
    empty_az = FilterOutcome("AvailabilityZoneFilter", 3, (), ((C, "Availability zone mismatch"),))
    later_empty = FilterOutcome("CapacityFilter", 0, (), ())
    assert last_filter_of([empty_az, later_empty]) == "AvailabilityZoneFilter"


def test_no_filter_is_blamed_when_there_was_nothing_to_filter() -> None:
    """Every backend disabled (or none reported): the filters ran on no pool."""
    nothing = [
        FilterOutcome(name, 0, (), ()) for name in ("AvailabilityZoneFilter", "CapacityFilter")
    ]
    assert last_filter_of(nothing) is None


def test_results() -> None:
    assert RESULTS == ("placed", "no_valid_backend", "deferred", "error")
