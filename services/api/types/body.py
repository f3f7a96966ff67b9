"""Validation of a volume-type create body: Cinder's ``volume_types.create`` JSON schema.

Cinder refuses unknown fields here (``additionalProperties: false`` at both levels), so the
whole body arrives as a ``google.protobuf.Struct`` and is checked in the order jsonschema
reports errors: the ``volume_type`` properties in schema order (name, description,
extra_specs, os-volume-type-access:is_public), then ``required``, then unknown keys.

The description follows Cinder's ``parameter_types.description`` pattern: printable
characters of the Basic Multilingual Plane only (``printable_pattern``). The name and
extra-spec values, which Cinder stores as sent, refuse control characters
(``NO_CONTROL_PATTERN``); extra-spec keys must match Cinder's key regex as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import struct_pb2

from cindermesh.errors import InvalidInput
from services.api.schema import (
    NO_CONTROL_PATTERN,
    JsonValue,
    bounded_messages,
    check_boolean,
    check_no_additional,
    check_pattern,
    check_present,
    check_string,
    check_string_map,
    invalid_field,
    object_to_python,
    printable_pattern,
    require_object,
    required_property,
)

__all__ = ["IS_PUBLIC_KEY", "TypeCreateInput", "validate_type_create"]

IS_PUBLIC_KEY = "os-volume-type-access:is_public"
_PROPERTIES = ("name", "description", "extra_specs", IS_PUBLIC_KEY)


@dataclass(frozen=True)
class TypeCreateInput:
    name: str
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    is_public: bool = True


def _name(value: JsonValue) -> str:
    name = check_string("name", value, min_length=1)
    assert name is not None
    if not name.strip():
        raise InvalidInput("An invalid 'name' value was provided. The 'name' can not be empty.")
    check_pattern("name", name, NO_CONTROL_PATTERN)
    return name


@bounded_messages
def validate_type_create(body: struct_pb2.Struct) -> TypeCreateInput:
    """Cinder's create schema; raises InvalidInput with Cinder's message."""
    root = object_to_python(body)
    check_present("volume_type" in root, "volume_type")
    volume_type = require_object("volume_type", root["volume_type"])
    name = _name(volume_type["name"]) if "name" in volume_type else None
    description = check_string(
        "description", volume_type.get("description"), nullable=True, pattern=printable_pattern()
    )
    specs = (
        check_string_map(
            "extra_specs", volume_type["extra_specs"], nullable=False, null_values=True
        )
        if "extra_specs" in volume_type
        else {}
    )
    is_public = (
        check_boolean(IS_PUBLIC_KEY, volume_type[IS_PUBLIC_KEY])
        if IS_PUBLIC_KEY in volume_type
        else True
    )
    if name is None:
        raise invalid_field("volume_type", volume_type, required_property("name"))
    check_no_additional("volume_type", volume_type, _PROPERTIES)
    check_no_additional(None, root, ("volume_type",))
    return TypeCreateInput(name, description, specs, is_public)
