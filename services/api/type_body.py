"""Validation of a volume-type create body: Cinder's ``volume_types.create`` JSON schema.

Cinder refuses unknown fields here (``additionalProperties: false`` at both levels), so the
whole body arrives as a ``google.protobuf.Struct`` and is checked in the order jsonschema
reports errors: the ``volume_type`` properties in schema order (name, description,
extra_specs, os-volume-type-access:is_public), then ``required``, then unknown keys.

The description follows Cinder's ``parameter_types.description`` pattern: printable
characters of the Basic Multilingual Plane only (``PRINTABLE_PATTERN``). The name and
extra-spec values, which Cinder stores as sent, refuse control characters
(``NO_CONTROL_PATTERN``); extra-spec keys must match Cinder's key regex as a whole.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from cindermesh.errors import InvalidInput
from services.api.json_values import JsonValue, invalid_field, not_of_type, type_name_matches
from services.api.validation import (
    MAX_NAME_LENGTH,
    METADATA_KEY_PATTERN,
    NO_CONTROL_PATTERN,
    bounded_messages,
    check_pattern,
    matches,
)

__all__ = ["IS_PUBLIC_KEY", "TypeCreateInput", "printable_pattern", "validate_type_create"]

IS_PUBLIC_KEY = "os-volume-type-access:is_public"
_SPEC_KEY = METADATA_KEY_PATTERN
_PROPERTIES = ("name", "description", "extra_specs", IS_PUBLIC_KEY)
#: Cinder's ``parameter_types.boolean`` enum, in its order (its message lists them).
_BOOLEANS: tuple[bool | str, ...] = (
    True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f",
)  # fmt: skip
_TRUE = {True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t"}


@dataclass(frozen=True)
class TypeCreateInput:
    name: str
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    is_public: bool = True


def _python(body: struct_pb2.Struct) -> dict[str, JsonValue]:
    """The body as plain Python; integral numbers become ints (JSON has no 1.0 vs 1). A Struct
    keeps no key order, so objects come out sorted by key (as messages then print them)."""

    def normalise(value: object) -> JsonValue:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
        if isinstance(value, list):
            return [normalise(v) for v in value]
        if isinstance(value, dict):
            return {str(k): normalise(v) for k, v in sorted(value.items())}
        assert value is None or isinstance(value, bool | int | float | str)
        return value

    return {k: normalise(v) for k, v in sorted(MessageToDict(body).items())}


def _printable(char: str) -> bool:
    """Cinder's rule: not a control, format, surrogate, private-use or unassigned code point
    (``C*``), and no separator but the space kind (``Zs``)."""
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _printable_runs() -> Iterator[tuple[str, str]]:
    """(first, last) of each run of printable characters from U+0000 to U+FFFE."""
    first = ""
    for code in range(0xFFFF):
        char = chr(code)
        if _printable(char) and not first:
            first = char
        elif not _printable(char) and first:
            yield first, chr(code - 1)
            first = ""
    if first:
        yield first, chr(0xFFFE)


@functools.cache
def printable_pattern() -> str:
    """Cinder's ``valid_description_regex``: ``^[<runs>]*$``, a run written ``a`` or ``a-z``
    (ends escaped), the same string Cinder's messages show."""
    runs = (
        re.escape(a) if a == z else f"{re.escape(a)}-{re.escape(z)}" for a, z in _printable_runs()
    )
    return f"^[{''.join(runs)}]*$"


def _unexpected(extra: list[str]) -> str:
    names = ", ".join(repr(k) for k in sorted(extra))
    verb = "was" if len(extra) == 1 else "were"
    return f"Additional properties are not allowed ({names} {verb} unexpected)"


def _check_type(name: str, value: JsonValue, types: tuple[str, ...]) -> None:
    if not type_name_matches(value, types):
        raise invalid_field(name, value, not_of_type(value, types))


def _check_max_length(name: str, value: JsonValue) -> None:
    if isinstance(value, str) and len(value) > MAX_NAME_LENGTH:
        raise invalid_field(name, value, f"{value!r} is too long")


def _name(value: JsonValue) -> str:
    _check_type("name", value, ("string",))
    assert isinstance(value, str)
    if not value:
        raise invalid_field("name", value, f"{value!r} should be non-empty")
    _check_max_length("name", value)
    if not value.strip():
        raise InvalidInput("An invalid 'name' value was provided. The 'name' can not be empty.")
    check_pattern("name", value, NO_CONTROL_PATTERN)
    return value


def _description(value: JsonValue) -> str | None:
    _check_type("description", value, ("string", "null"))
    _check_max_length("description", value)
    check_pattern("description", value, printable_pattern())
    return value if isinstance(value, str) else None


def _extra_specs(value: JsonValue) -> dict[str, str]:
    """``extra_specs_with_null``; a null value is kept as the empty string."""
    _check_type("extra_specs", value, ("object",))
    assert isinstance(value, dict)
    for key, item in value.items():
        if matches(_SPEC_KEY, key):
            _check_type(key, item, ("string", "null"))
            _check_max_length(key, item)
            check_pattern(key, item, NO_CONTROL_PATTERN)
    bad = sorted(k for k in value if not matches(_SPEC_KEY, k))
    if bad:
        listed = ", ".join(repr(k) for k in bad)
        verb = "does" if len(bad) == 1 else "do"
        raise invalid_field(
            "extra_specs", value, f"{listed} {verb} not match any of the regexes: {_SPEC_KEY!r}"
        )
    return {k: v if isinstance(v, str) else "" for k, v in value.items()}


def _is_public(value: JsonValue) -> bool:
    _check_type(IS_PUBLIC_KEY, value, ("boolean", "string"))
    if not any(value == b and type(value) is type(b) for b in _BOOLEANS):
        raise invalid_field(IS_PUBLIC_KEY, value, f"{value!r} is not one of {list(_BOOLEANS)!r}")
    return value in _TRUE


@bounded_messages
def validate_type_create(body: struct_pb2.Struct) -> TypeCreateInput:
    """Cinder's create schema; raises InvalidInput with Cinder's message."""
    root = _python(body)
    if "volume_type" in root:
        volume_type = root["volume_type"]
        _check_type("volume_type", volume_type, ("object",))
        assert isinstance(volume_type, dict)
        name = _name(volume_type["name"]) if "name" in volume_type else None
        description = _description(volume_type.get("description"))
        specs = _extra_specs(volume_type["extra_specs"]) if "extra_specs" in volume_type else {}
        is_public = _is_public(volume_type[IS_PUBLIC_KEY]) if IS_PUBLIC_KEY in volume_type else True
        if name is None:
            raise invalid_field("volume_type", volume_type, "'name' is a required property")
        extra = [k for k in volume_type if k not in _PROPERTIES]
        if extra:
            raise invalid_field("volume_type", volume_type, _unexpected(extra))
    else:
        raise InvalidInput("'volume_type' is a required property")
    extra = [k for k in root if k != "volume_type"]
    if extra:
        raise InvalidInput(_unexpected(extra))
    return TypeCreateInput(name, description, specs, is_public)
