"""Transfer bodies (Cinder's volume_transfer schemas and messages), views by microversion, and
the auth key's hash."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from cindermesh.db.models import Transfer
from cindermesh.db.transfers import AUTH_KEY_LENGTH, crypt_hash, random_hex
from cindermesh.errors import InvalidInput
from services.api.edge.auth import Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.transfers.body import validate_accept, validate_create
from services.api.transfers.views import transfer_detail, transfer_summary

VOLUME = "4d75b645-a478-48b1-97c8-503f64242f1a"


def _struct(body: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(body)
    return struct


def _message(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value.message


def test_create_strips_the_name_and_reads_no_snapshots() -> None:
    given = validate_create(
        _struct({"transfer": {"volume_id": VOLUME, "name": " t ", "no_snapshots": "yes"}}), True
    )
    assert (given.volume_id, given.name, given.no_snapshots) == (VOLUME, "t", True)
    plain = validate_create(_struct({"transfer": {"volume_id": VOLUME, "name": None}}), False)
    assert (plain.name, plain.no_snapshots) == (None, False)


@pytest.mark.parametrize(
    ("body", "with_snapshots", "message"),
    [
        ({}, True, "'transfer' is a required property"),
        ({"transfer": {"volume_id": VOLUME}, "x": 1}, True,
         "Additional properties are not allowed ('x' was unexpected)"),
        ({"transfer": []}, True,
         "Invalid input for field/attribute transfer. Value: []. [] is not of type 'object'"),
        ({"transfer": {"volume_id": 5}}, True,
         "Invalid input for field/attribute volume_id. Value: 5. 5 is not of type 'string'"),
        ({"transfer": {"volume_id": VOLUME, "name": 5}}, True,
         "Invalid input for field/attribute name. Value: 5. 5 is not valid under any of the "
         "given schemas"),
        ({"transfer": {"volume_id": VOLUME, "name": ""}}, True,
         "An invalid 'name' value was provided. The 'name' can not be None."),
        ({"transfer": {"volume_id": VOLUME, "name": "x" * 256}}, True,
         "An invalid 'name' value was provided. The 'name' can not be greater than 255 "
         "characters."),
        ({"transfer": {"volume_id": VOLUME, "no_snapshots": "maybe"}}, True,
         "Invalid input for field/attribute no_snapshots. Value: maybe. 'maybe' is not one of "
         "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', "
         "False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', "
         "'f']"),
        ({"transfer": {"volume_id": VOLUME, "no_snapshots": True}}, False,
         f"Invalid input for field/attribute transfer. Value: {{'no_snapshots': True, "
         f"'volume_id': '{VOLUME}'}}. Additional properties are not allowed ('no_snapshots' "
         "was unexpected)"),
    ],
)  # fmt: skip
def test_create_refusals(body: dict[str, Any], with_snapshots: bool, message: str) -> None:
    assert _message(validate_create, _struct(body), with_snapshots) == message


def test_accept_takes_a_string_or_an_integer() -> None:
    assert validate_accept(_struct({"accept": {"auth_key": "abc"}})) == "abc"
    assert validate_accept(_struct({"accept": {"auth_key": 123}})) == "123"
    assert _message(validate_accept, _struct({"accept": {"auth_key": True}})) == (
        "Invalid input for field/attribute auth_key. Value: True. True is not of type "
        "'string', 'integer'"
    )
    assert _message(validate_accept, _struct({"accept": {"auth_key": "a", "b": 1}})) == (
        "Invalid input for field/attribute accept. Value: {'auth_key': 'a', 'b': 1}. "
        "Additional properties are not allowed ('b' was unexpected)"
    )
    assert _message(validate_accept, _struct({})) == "'accept' is a required property"


def test_the_key_is_cinders_hmac_of_hex_digits() -> None:
    key = random_hex(AUTH_KEY_LENGTH)
    assert len(key) == 16 and set(key) <= set("0123456789abcdef")
    assert random_hex(AUTH_KEY_LENGTH) != key
    expected = hmac.new(b"salt", key.encode(), hashlib.sha1).hexdigest()
    assert crypt_hash("salt", key) == expected


def _ctx(minor: int, in_url: bool = True) -> RequestContext:
    return RequestContext(Caller("u", "p"), Microversion(3, minor), "http://h", in_url)


TRANSFER = Transfer(
    id="t1", volume_id=VOLUME, display_name=None, salt="s", crypt_hash="h",
    source_project_id="p",
)  # fmt: skip


@pytest.mark.parametrize(
    ("minor", "added"),
    [
        (54, set()),
        (55, {"no_snapshots"}),
        (57, {"no_snapshots", "source_project_id", "destination_project_id", "accepted"}),
    ],
)
def test_views_by_microversion(minor: int, added: set[str]) -> None:
    ctx = _ctx(minor)
    detail = MessageToDict(transfer_detail(ctx, TRANSFER), preserving_proto_field_name=True)
    assert set(detail) == {"id", "created_at", "name", "volume_id", "links"} | added
    assert detail["name"] is None
    created = MessageToDict(
        transfer_detail(ctx, TRANSFER, auth_key="k"), preserving_proto_field_name=True
    )
    assert created["auth_key"] == "k"
    summary = MessageToDict(transfer_summary(ctx, TRANSFER), preserving_proto_field_name=True)
    assert set(summary) == {"id", "volume_id", "name", "links"}
    if minor >= 57:
        assert detail["destination_project_id"] is None and detail["accepted"] is False


def test_links_name_the_extensions_collection() -> None:
    links = [link.href for link in transfer_summary(_ctx(57), TRANSFER).links]
    assert links == ["http://h/v3/p/os-volume-transfer/t1", "http://h/p/os-volume-transfer/t1"]
    bare = [link.href for link in transfer_summary(_ctx(57, False), TRANSFER).links]
    assert bare == ["http://h/v3/os-volume-transfer/t1", "http://h/os-volume-transfer/t1"]
