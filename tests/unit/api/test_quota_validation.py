"""Quota-set update body, ``?usage=`` and the usage floor: Cinder's messages, table-driven."""

from __future__ import annotations

import pytest
from google.protobuf import json_format, struct_pb2

from cindermesh.errors import InvalidInput
from services.api.quotas.quota_sets import (
    QuotaEntry,
    check_not_below_usage,
    parse_usage_flag,
    resource_names,
    validate_update,
)
from services.api.schema import JsonValue, to_python

KNOWN = resource_names(["__DEFAULT__", "fast"])


def _value(text: str) -> JsonValue:
    """The quota_set as the api receives it: JSON through a google.protobuf.Value."""
    return to_python(json_format.Parse(text, struct_pb2.Value()))


def test_resource_names_cover_fixed_and_per_type_keys() -> None:
    assert set(KNOWN) == {
        "volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
        "per_volume_gigabytes", "groups",
        "volumes___DEFAULT__", "gigabytes___DEFAULT__", "snapshots___DEFAULT__",
        "volumes_fast", "gigabytes_fast", "snapshots_fast",
    }  # fmt: skip


ACCEPTED = [
    ('{"volumes": 1}', {"volumes": 1}),
    ('{"volumes": -1, "gigabytes": "20"}', {"volumes": -1, "gigabytes": 20}),
    ('{"volumes": 2147483647}', {"volumes": 2147483647}),
    ('{"volumes___DEFAULT__": 0, "snapshots_fast": 3}', {"volumes___DEFAULT__": 0, "snapshots_fast": 3}),
    ('{"groups": 4, "per_volume_gigabytes": 5}', {"groups": 4, "per_volume_gigabytes": 5}),
    # id and tenant_id are ignored, as Cinder's NON_QUOTA_KEYS.
    ('{"id": "x", "tenant_id": "y", "backups": 1}', {"backups": 1}),
    ('{"id": "x"}', {}),
]  # fmt: skip


@pytest.mark.parametrize(("body", "limits"), ACCEPTED)
def test_accepted(body: str, limits: dict[str, int]) -> None:
    assert validate_update(_value(body), True, KNOWN) == limits


REFUSED = [
    ('{}', "Invalid input for field/attribute quota_set. Value: {}. {} should be non-empty"),
    ('"x"', "Invalid input for field/attribute quota_set. Value: x. 'x' is not of type 'object'"),
    ('null', "Invalid input for field/attribute quota_set. Value: None. None is not of type 'object'"),
    ('[1]', "Invalid input for field/attribute quota_set. Value: [1]. [1] is not of type 'object'"),
    ('{"foo": 1}', "Invalid input received: Bad key(s) in quota set: foo"),
    ('{"volumes_nope": 1}', "Invalid input received: Bad key(s) in quota set: volumes_nope"),
    ('{"volumes": "x"}', "volumes must be an integer"),
    ('{"volumes": 1.5}', "volumes must be an integer"),
    ('{"volumes": true}', "volumes must be an integer"),
    ('{"volumes": null}', "volumes must be an integer"),
    ('{"volumes": {}}', "volumes must be an integer"),
    ('{"volumes": -2}', "volumes must be >= -1"),
    ('{"gigabytes": "-5"}', "gigabytes must be >= -1"),
    ('{"volumes": 2147483648}', "volumes must be <= 2147483647"),
    # A bad value wins over a bad key: Cinder collects bad keys, but raises on a value at once.
    ('{"foo": 1, "volumes": "x"}', "volumes must be an integer"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), REFUSED)
def test_refused(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_update(_value(body), True, KNOWN)
    assert raised.value.message == message


def test_missing_quota_set() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_update(None, False, KNOWN)
    assert raised.value.message == "'quota_set' is a required property"


def test_several_bad_keys_are_listed() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_update({"foo": 1, "bar": 2}, True, KNOWN)
    assert raised.value.message == "Invalid input received: Bad key(s) in quota set: foo, bar"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("True", True), ("true", True), ("1", True), ("yes", True), ("t", True),
     ("False", False), ("0", False), ("off", False), ("n", False)],
)  # fmt: skip
def test_usage_flag(value: str | None, expected: bool) -> None:
    assert parse_usage_flag(value) is expected


@pytest.mark.parametrize("value", ["x", "", " true", "2"])
def test_usage_flag_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_usage_flag(value)
    assert raised.value.message == f"Value '{value}' for 'usage' is not a boolean."


def test_limit_below_usage_is_refused_with_in_use_plus_reserved() -> None:
    usages = {"volumes": QuotaEntry(0, in_use=2, reserved=1)}
    with pytest.raises(InvalidInput) as raised:
        check_not_below_usage({"volumes": 2}, usages)
    assert raised.value.message == (
        "Quota volumes limit must be equal or greater than existing resources. "
        "Current usage is 3 and the requested limit is 2."
    )


def test_limit_at_usage_unlimited_and_per_volume_pass() -> None:
    usages = {
        "volumes": QuotaEntry(0, in_use=3),
        "per_volume_gigabytes": QuotaEntry(0, in_use=50),
    }
    check_not_below_usage({"volumes": 3, "gigabytes": 0, "per_volume_gigabytes": 1}, usages)
    check_not_below_usage({"volumes": -1}, usages)
