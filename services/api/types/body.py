"""Validation of the volume-type bodies: Cinder's ``volume_types`` create and update,
``types_extra_specs``, ``volume_type_access`` and ``volume_type_encryption`` JSON schemas.

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
    check_type,
    invalid_field,
    invalid_input,
    matches,
    object_to_python,
    printable_pattern,
    require_object,
    required_property,
)

__all__ = [
    "ADD_PROJECT_ACCESS",
    "IS_PUBLIC_KEY",
    "REMOVE_PROJECT_ACCESS",
    "EncryptionInput",
    "TypeActionInput",
    "TypeCreateInput",
    "TypeUpdateInput",
    "check_spec_key_matches",
    "validate_encryption",
    "validate_extra_spec_update",
    "validate_extra_specs_create",
    "validate_type_action",
    "validate_type_create",
    "validate_type_update",
]

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


# --- update --------------------------------------------------------------------------------

_UPDATE_PROPERTIES = ("name", "description", "is_public")


@dataclass(frozen=True)
class TypeUpdateInput:
    """None: unchanged (Cinder cannot clear a description with null either)."""

    name: str | None = None
    description: str | None = None
    is_public: bool | None = None


@bounded_messages
def validate_type_update(body: struct_pb2.Struct) -> TypeUpdateInput:
    """Cinder's ``volume_types.update`` schema, then its controller's two refusals."""
    root = object_to_python(body)
    check_present("volume_type" in root, "volume_type")
    volume_type = require_object("volume_type", root["volume_type"])
    name = check_string(
        "name", volume_type.get("name"), nullable=True, min_length=1, pattern=NO_CONTROL_PATTERN
    )
    description = check_string(
        "description", volume_type.get("description"), nullable=True, pattern=printable_pattern()
    )
    is_public = volume_type.get("is_public")
    public = check_boolean("is_public", is_public) if is_public is not None else None
    check_no_additional("volume_type", volume_type, _UPDATE_PROPERTIES)
    check_no_additional(None, root, ("volume_type",))
    if name is not None and not name.strip():
        raise InvalidInput("Volume type name can not be empty.")
    if name is None and description is None and public is None:
        raise InvalidInput(
            "Specify volume type name, description, is_public or a combination thereof."
        )
    return TypeUpdateInput(name, description, public)


# --- extra specs ---------------------------------------------------------------------------

#: Cinder's ``extra_specs_with_no_spaces_key``: the keys the extra-specs resource accepts.
EXTRA_SPEC_KEY_PATTERN = "^[a-zA-Z0-9-_:.]{1,255}$"


def _extra_specs(name: str | None, value: dict[str, JsonValue]) -> dict[str, str]:
    """``extra_specs_with_no_spaces_key`` (``check_string_map``'s rules with keys that have no
    space): values of matching keys first, then the keys that do not match; ``name`` None for
    the body itself. A null value is kept as the empty string."""
    for key, item in value.items():
        if matches(EXTRA_SPEC_KEY_PATTERN, key):
            check_string(key, item, nullable=True, pattern=NO_CONTROL_PATTERN)
    bad = sorted(k for k in value if not matches(EXTRA_SPEC_KEY_PATTERN, k))
    if bad:
        listed = ", ".join(repr(k) for k in bad)
        verb = "does" if len(bad) == 1 else "do"
        message = f"{listed} {verb} not match any of the regexes: {EXTRA_SPEC_KEY_PATTERN!r}"
        raise InvalidInput(message) if name is None else invalid_field(name, value, message)
    return {k: v if isinstance(v, str) else "" for k, v in value.items()}


@bounded_messages
def validate_extra_specs_create(
    body: struct_pb2.Struct, key: str = "extra_specs"
) -> dict[str, str]:
    """Cinder's ``types_extra_specs.create``: ``{"extra_specs": {...}}`` (``key``: the
    body's key, ``group_specs`` for ``group_specs.create``, whose schema is the same)."""
    root = object_to_python(body)
    check_present(key in root, key)
    specs = _extra_specs(key, require_object(key, root[key]))
    check_no_additional(None, root, (key,))
    return specs


@bounded_messages
def validate_extra_spec_update(body: struct_pb2.Struct) -> dict[str, str]:
    """Cinder's ``types_extra_specs.update``: the body is the map, of exactly one key."""
    root = object_to_python(body)
    specs = _extra_specs(None, root)
    if not root:
        raise InvalidInput("{} should be non-empty")
    if len(root) > 1:
        raise InvalidInput(f"{root!r} has too many properties")
    return specs


def check_spec_key_matches(key: str, body: struct_pb2.Struct) -> None:
    """Cinder's ``Request body and URI mismatch`` (after the type was found)."""
    if key not in body.fields:
        raise InvalidInput("Request body and URI mismatch")


# --- type access ---------------------------------------------------------------------------

ADD_PROJECT_ACCESS = "addProjectAccess"
REMOVE_PROJECT_ACCESS = "removeProjectAccess"


@dataclass(frozen=True)
class TypeActionInput:
    action: str
    project: str


@bounded_messages
def validate_type_action(body: struct_pb2.Struct) -> TypeActionInput:
    """Cinder's action dispatch (one key, a known action), then the action's schema."""
    root = object_to_python(body)
    if len(root) != 1:
        raise InvalidInput("Malformed request body")
    action = next(iter(root))
    if action not in (ADD_PROJECT_ACCESS, REMOVE_PROJECT_ACCESS):
        raise InvalidInput(
            f"There is no such action: {action}. Verify the request body and Content-Type "
            "header and try again."
        )
    access = require_object(action, root[action])
    project = (
        check_string("project", access["project"], min_length=1) if "project" in access else None
    )
    if project is None:
        raise invalid_field(action, access, required_property("project"))
    check_no_additional(action, access, ("project",))
    return TypeActionInput(action, project)


# --- encryption ----------------------------------------------------------------------------

CONTROL_LOCATIONS = ("front-end", "back-end")
#: Cinder's ``constants.DB_MAX_INT``.
DB_MAX_INT = 0x7FFFFFFF


@dataclass(frozen=True)
class EncryptionInput:
    #: The fields given, as Cinder stores and echoes them (``key_size`` an int).
    fields: dict[str, JsonValue]


def _key_size(value: JsonValue) -> int | None:
    """``parameter_types.key_size``: a string, an integer or null, 0 to DB_MAX_INT, int-like."""
    check_type("key_size", value, ("string", "integer", "null"))
    if isinstance(value, int) and value < 0:
        raise invalid_field("key_size", value, f"{value!r} is less than the minimum of 0")
    if isinstance(value, int) and value > DB_MAX_INT:
        raise invalid_field(
            "key_size", value, f"{value!r} is greater than the maximum of {DB_MAX_INT}"
        )
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is None or str(number) != str(value):
        raise invalid_input("key_size must be an integer.")
    return number


@bounded_messages
def validate_encryption(body: struct_pb2.Struct, *, create: bool) -> EncryptionInput:
    """Cinder's ``volume_type_encryption`` create (``provider`` and ``control_location``
    required) and update schemas; other keys are allowed, as Cinder's."""
    root = object_to_python(body)
    check_present("encryption" in root, "encryption")
    encryption = require_object("encryption", root["encryption"])
    fields = dict(encryption)
    if "key_size" in encryption:
        fields["key_size"] = _key_size(encryption["key_size"])
    if "provider" in encryption:
        check_string("provider", encryption["provider"])
    if "control_location" in encryption:
        location = encryption["control_location"]
        if location not in CONTROL_LOCATIONS or not isinstance(location, str):
            raise invalid_field(
                "control_location",
                location,
                f"{location!r} is not one of {list(CONTROL_LOCATIONS)!r}",
            )
    if "cipher" in encryption:
        check_string("cipher", encryption["cipher"], nullable=True)
    if create:
        for key in ("provider", "control_location"):
            if key not in encryption:
                raise invalid_field("encryption", encryption, required_property(key))
    check_no_additional(None, root, ("encryption",))
    return EncryptionInput(fields)
