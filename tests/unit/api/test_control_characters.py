"""NUL and control characters in stored text, and messages that show a huge value.

Cinder refuses non-printable characters only in volume-type descriptions (its
``parameter_types.description`` pattern) and metadata keys (its key regex, whose ``$`` lets a
final line feed through); it stores them as sent everywhere else. We refuse control characters
in every name and value that is stored, with jsonschema's ``pattern`` message."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2

from cindermesh.errors import InvalidInput
from cindermesh_pb.api.v1 import fault_pb2
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.auth import Caller
from services.api.edge.errors import (
    MAX_FAULT_BYTES,
    MAX_MESSAGE_CHARS,
    STATUS_MESSAGE_BYTES,
    ErrorMapping,
    fault_status,
    shorten,
)
from services.api.edge.microversion import MIN_VERSION
from services.api.edge.request_context import RequestContext
from services.api.schema import DESCRIPTION_PATTERN, NO_CONTROL_PATTERN, printable_pattern
from services.api.types.body import validate_type_create
from services.api.volumes.body import parse_meta, parse_metadata, parse_update, validate_create

FIELD = "Invalid input for field/attribute"
KEY_REGEX = "'^[a-zA-Z0-9-_:. /]{1,255}$'"
CTX = RequestContext(Caller("u", "p"), MIN_VERSION, "http://h", True)


def _create(body: dict[str, object]) -> None:
    message = json_format.Parse(
        json.dumps(body), api_pb2.VolumeCreate(), ignore_unknown_fields=True
    )
    validate_create(message, MIN_VERSION)


def _value(body: object) -> struct_pb2.Value:
    return json_format.Parse(json.dumps(body), struct_pb2.Value())


def _message(call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value.message


def test_patterns_are_what_the_messages_show() -> None:
    assert NO_CONTROL_PATTERN == "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    assert DESCRIPTION_PATTERN == "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "a\x00b"}, f"{FIELD} name. Value: a\x00b. 'a\\x00b' does not match {NO_CONTROL_PATTERN!r}"),
        ({"display_name": "a\x1b[31m"}, f"{FIELD} display_name. Value: a\x1b[31m. 'a\\x1b[31m' does not match {NO_CONTROL_PATTERN!r}"),
        ({"name": "a\x85b"}, f"{FIELD} name. Value: a\x85b. 'a\\x85b' does not match {NO_CONTROL_PATTERN!r}"),
        ({"description": "a\x00"}, f"{FIELD} description. Value: a\x00. 'a\\x00' does not match {DESCRIPTION_PATTERN!r}"),
        ({"description": "a\x7fb"}, f"{FIELD} description. Value: a\x7fb. 'a\\x7fb' does not match {DESCRIPTION_PATTERN!r}"),
        ({"metadata": {"k": "v\x00"}}, f"{FIELD} k. Value: v\x00. 'v\\x00' does not match {NO_CONTROL_PATTERN!r}"),
        ({"metadata": {"k": "line\nbreak"}}, f"{FIELD} k. Value: line\nbreak. 'line\\nbreak' does not match {NO_CONTROL_PATTERN!r}"),
        ({"metadata": {"k\x00": "v"}}, f"{FIELD} metadata. Value: {{'k\\x00': 'v'}}. 'k\\x00' does not match any of the regexes: {KEY_REGEX}"),
        ({"metadata": {"k\n": "v"}}, f"{FIELD} metadata. Value: {{'k\\n': 'v'}}. 'k\\n' does not match any of the regexes: {KEY_REGEX}"),
    ],
)  # fmt: skip
def test_create_refuses_control_characters(volume: dict[str, object], message: str) -> None:
    assert _message(_create, {"size": 1, **volume}) == message


def test_create_keeps_what_cinder_keeps() -> None:
    _create(
        {
            "size": 1,
            "name": "  été ☃ 🙂  ",
            "description": "two\nlines\tand\r\n",
            "metadata": {"k": "é 🙂"},
        }
    )
    # Whitespace that is stripped anyway is no reason to refuse.
    _create({"size": 1, "name": "name\n", "description": "\x1c d \x1f"})


@pytest.mark.parametrize(
    ("call", "body", "message"),
    [
        (lambda b: parse_update(b, True, CTX), {"volume": {"name": "\x00"}}, f"{FIELD} name. Value: \x00. '\\x00' does not match {NO_CONTROL_PATTERN!r}"),
        (lambda b: parse_update(b, True, CTX), {"volume": {"metadata": {"a": "\x01"}}}, f"{FIELD} a. Value: \x01. '\\x01' does not match {NO_CONTROL_PATTERN!r}"),
        (lambda b: parse_metadata(b, True), {"a": "b\x00"}, f"{FIELD} a. Value: b\x00. 'b\\x00' does not match {NO_CONTROL_PATTERN!r}"),
        (lambda b: parse_meta(b, True, "a"), {"a": "\x7f"}, f"{FIELD} a. Value: \x7f. '\\x7f' does not match {NO_CONTROL_PATTERN!r}"),
        (lambda b: parse_meta(b, True, "a\n"), {"a\n": "v"}, f"{FIELD} meta. Value: {{'a\\n': 'v'}}. 'a\\n' does not match any of the regexes: {KEY_REGEX}"),
    ],
)  # fmt: skip
def test_updates_refuse_control_characters(call: object, body: object, message: str) -> None:
    unwrapped = body["volume"] if isinstance(body, dict) and "volume" in body else body
    assert _message(call, _value(unwrapped)) == message


def _type(volume_type: dict[str, object]) -> None:
    validate_type_create(
        json_format.Parse(json.dumps({"volume_type": volume_type}), struct_pb2.Struct())
    )


def test_type_description_is_cinders_printable_pattern() -> None:
    pattern = printable_pattern()
    assert pattern.startswith("^[\\ -\\~\xa0-¬®-ͷ") and pattern.endswith("]*$")
    for text in ("a\x00", "two\nlines", "emoji 🙂", "\u2028"):
        expected = f"{FIELD} description. Value: {text}. {text!r} does not match {pattern!r}"
        assert _message(_type, {"name": "t", "description": text}) == expected
    _type({"name": "t", "description": "été ☃ and spaces\u3000"})


@pytest.mark.parametrize(
    ("volume_type", "message"),
    [
        ({"name": "t\x00"}, f"{FIELD} name. Value: t\x00. 't\\x00' does not match {NO_CONTROL_PATTERN!r}"),
        ({"name": "t", "extra_specs": {"k": "v\x00"}}, f"{FIELD} k. Value: v\x00. 'v\\x00' does not match {NO_CONTROL_PATTERN!r}"),
        ({"name": "t", "extra_specs": {"k\n": "v"}}, f"{FIELD} extra_specs. Value: {{'k\\n': 'v'}}. 'k\\n' does not match any of the regexes: {KEY_REGEX}"),
    ],
)  # fmt: skip
def test_type_name_and_extra_specs_refuse_control_characters(
    volume_type: dict[str, object], message: str
) -> None:
    assert _message(_type, volume_type) == message


def test_message_showing_a_huge_value_is_shortened() -> None:
    message = _message(_create, {"size": 1, "metadata": {"k": [0] * 50000}})
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.startswith(f"{FIELD} k. Value: [0, 0, ")
    assert message.endswith("0, 0] is not of type 'string'")
    assert " ... " in message
    message = _message(lambda b: parse_metadata(b, True), _value({"k": "x" * 100000}))
    assert len(message) <= MAX_MESSAGE_CHARS and message.endswith("xxx' is too long")


def test_shorten_and_fault_status_bound_every_message() -> None:
    assert shorten("short") == "short"
    long = "a" * 3000 + "b" * 3000
    assert len(shorten(long)) <= MAX_MESSAGE_CHARS
    assert shorten(long).startswith("aaa") and shorten(long).endswith("bbb")
    mapping = ErrorMapping(grpc.StatusCode.INVALID_ARGUMENT, 400, "badRequest")
    status = fault_status(mapping, "\U0001f642" * 100000)
    assert len(status.details.encode()) <= STATUS_MESSAGE_BYTES
    trailers = dict(status.trailing_metadata)
    details = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    fault = fault_pb2.CinderFault()
    assert details.details[0].Unpack(fault)
    assert fault.fault_key == "badRequest" and fault.body.code == 400
    assert len(fault.body.message.encode()) <= MAX_FAULT_BYTES
    assert fault.body.message.startswith("\U0001f642") and " ... " in fault.body.message
    # In the trailers (base64, percent-encoded): under grpc's default 8 KiB metadata limit.
    size = len(trailers["grpc-status-details-bin"]) * 4 / 3 + 3 * len(status.details.encode())
    assert size < 7.5 * 1024
