"""``google.protobuf.Value`` <-> plain Python, and Cinder's JSON-schema message texts.

Request fields that Cinder accepts in several JSON types arrive as ``Value``s; the api
validates them itself so that its messages are Cinder's (its jsonschema Draft 4 validator,
wrapped as ``Invalid input for field/attribute <field>. Value: <value>. <message>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from cindermesh.errors import InvalidInput

__all__ = [
    "JsonValue",
    "invalid_field",
    "not_of_type",
    "to_python",
    "type_name_matches",
]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"


def _normalise(value: object) -> JsonValue:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        # A protobuf Struct does not keep the JSON's key order; sorted keys are deterministic
        # (and match Cinder's messages whenever the client sent them sorted).
        return {str(k): _normalise(value[k]) for k in sorted(value)}
    assert value is None or isinstance(value, bool | int | float | str)
    return value


def to_python(value: struct_pb2.Value) -> JsonValue:
    """The JSON value as Python; integral numbers become ints (JSON has no 1.0 vs 1)."""
    if value.WhichOneof("kind") is None:
        return None
    return _normalise(MessageToDict(value))


def invalid_field(field: str, value: JsonValue, message: str) -> InvalidInput:
    return InvalidInput(f"Invalid input for field/attribute {field}. Value: {value}. {message}")


def not_of_type(value: JsonValue, types: tuple[str, ...]) -> str:
    return f"{value!r} is not of type {', '.join(repr(t) for t in types)}"


def type_name_matches(value: JsonValue, types: tuple[str, ...]) -> bool:
    checks: Mapping[str, bool] = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }
    return any(checks[t] for t in types)
