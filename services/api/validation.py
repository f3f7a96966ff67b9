"""Validation of a create body: Cinder's create-volume JSON schema and its controller checks
that need no database (the first half of the seed's ExtractVolumeRequestTask).

Checks run in the order of Cinder's schema properties, so the first error reported is the one
Cinder reports, with Cinder's message.

Text that Cinder stores as sent we refuse when it holds control characters (NUL, C0, DEL, C1):
names and metadata values (``NO_CONTROL_PATTERN``), descriptions (``DESCRIPTION_PATTERN``,
which keeps tabs and line breaks); metadata keys must match Cinder's key regex as a whole (its
``$`` also let a trailing line break through). The message is jsonschema's for a ``pattern``.
Messages that show a huge value are shortened (``services.api.errors.shorten``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from cindermesh.errors import InvalidInput
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.errors import MAX_MESSAGE_CHARS, shorten
from services.api.json_values import (
    JsonValue,
    invalid_field,
    not_of_type,
    to_python,
    type_name_matches,
)
from services.api.microversion import Microversion

__all__ = [
    "DEFAULT_400_MESSAGE",
    "DESCRIPTION_PATTERN",
    "METADATA_KEY_PATTERN",
    "NO_CONTROL_PATTERN",
    "VolumeCreateInput",
    "bounded_messages",
    "check_description",
    "check_metadata",
    "check_name",
    "check_pattern",
    "matches",
    "validate_create",
]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_400_MESSAGE = (
    "The server could not comply with the request since it is either malformed or otherwise "
    "incorrect."
)
MAX_SIZE_GB = 2147483647
MAX_NAME_LENGTH = 255
_DIGITS = re.compile(r"^[0-9]+$")
METADATA_KEY_PATTERN = "^[a-zA-Z0-9-_:. /]{1,255}$"
#: No control character at all: names, metadata and extra-spec values.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: No control character but tab, line feed and carriage return: volume descriptions.
DESCRIPTION_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_BOOLEAN_STRINGS = {
    "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
    "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f",
}  # fmt: skip
_TRUE_STRINGS = {"True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t"}


@dataclass(frozen=True)
class VolumeCreateInput:
    """A create body that passed the schema: plain, typed values."""

    size: int | None
    name: str | None = None
    description: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    snapshot_id: str | None = None
    source_volid: str | None = None
    consistencygroup_id: str | None = None
    image_ref: str | None = None
    group_id: str | None = None
    backup_id: str | None = None
    multiattach: bool = False


@functools.cache
def _whole(pattern: str) -> re.Pattern[str]:
    """A ``^...$`` pattern matched against the whole text (``$`` alone allows a final "\\n")."""
    return re.compile(pattern.removeprefix("^").removesuffix("$"))


def matches(pattern: str, text: str) -> bool:
    return _whole(pattern).fullmatch(text) is not None


def check_pattern(name: str, value: JsonValue, pattern: str) -> None:
    """jsonschema's ``pattern`` keyword (strings only), with its message."""
    if isinstance(value, str) and not matches(pattern, value):
        raise invalid_field(name, value, f"{value!r} does not match {pattern!r}")


def bounded_messages(check: Callable[P, T]) -> Callable[P, T]:
    """Shortens the message of an InvalidInput ``check`` raises (it may show a huge value)."""

    @functools.wraps(check)
    def bounded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return check(*args, **kwargs)
        except InvalidInput as error:
            if len(error.message) > MAX_MESSAGE_CHARS:
                error.message = shorten(error.message)
                error.args = (error.message,)
            raise

    return bounded


def _types(name: str, value: JsonValue, types: tuple[str, ...]) -> None:
    if not type_name_matches(value, types):
        raise invalid_field(name, value, not_of_type(value, types))


def _max_length(name: str, value: JsonValue, limit: int = MAX_NAME_LENGTH) -> None:
    if isinstance(value, str) and len(value) > limit:
        raise invalid_field(name, value, f"{value!r} is too long")


def _text_with_length_format(label: str, pattern: str) -> Callable[[str, JsonValue], str | None]:
    """name/description: string or null; too long after stripping -> InvalidInput; then no
    control characters in what is kept (``pattern``)."""

    def check(name: str, value: JsonValue) -> str | None:
        _types(name, value, ("string", "null"))
        if not isinstance(value, str):
            return None
        stripped = value.strip()
        if len(stripped) > MAX_NAME_LENGTH:
            raise InvalidInput(
                f"Invalid input received: {label} has {len(stripped)} characters, "
                f"more than {MAX_NAME_LENGTH}."
            )
        check_pattern(name, stripped, pattern)
        return stripped

    return check


check_name = _text_with_length_format("name", NO_CONTROL_PATTERN)
check_description = _text_with_length_format("description", DESCRIPTION_PATTERN)


def _optional_string(name: str, value: JsonValue, min_length: int = 0) -> str | None:
    _types(name, value, ("string", "null"))
    if isinstance(value, str) and len(value) < min_length:
        raise invalid_field(name, value, f"{value!r} should be non-empty")
    _max_length(name, value)
    return value if isinstance(value, str) else None


def _optional_uuid(name: str, value: JsonValue) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or _UUID.match(value) is None:
        raise invalid_field(name, value, f"{value!r} is not valid under any of the given schemas")
    return value


def _optional_boolean(name: str, value: JsonValue) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _BOOLEAN_STRINGS:
        return value in _TRUE_STRINGS
    raise invalid_field(name, value, f"{value!r} is not valid under any of the given schemas")


def check_metadata(name: str, value: JsonValue, allow_null: bool) -> dict[str, str]:
    """Cinder's ``metadata_allows_null`` / ``extra_specs`` schema; values without control
    characters."""
    types = ("object", "null") if allow_null else ("object",)
    _types(name, value, types)
    if not isinstance(value, dict):
        return {}
    for key, item in value.items():
        if matches(METADATA_KEY_PATTERN, key):
            _types(key, item, ("string",))
            _max_length(key, item)
            check_pattern(key, item, NO_CONTROL_PATTERN)
    bad = sorted(k for k in value if not matches(METADATA_KEY_PATTERN, k))
    if bad:
        listed = ", ".join(repr(k) for k in bad)
        verb = "does" if len(bad) == 1 else "do"
        raise invalid_field(
            name, value, f"{listed} {verb} not match any of the regexes: {METADATA_KEY_PATTERN!r}"
        )
    return {k: str(v) for k, v in value.items()}


def _size(value: JsonValue) -> int | None:
    _types("size", value, ("integer", "string", "null"))
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.match(value) is None:
        raise invalid_field("size", value, f"{value!r} does not match '^[0-9]+$'")
    number = int(value) if isinstance(value, str) else value
    assert isinstance(number, int)
    if number < 1:
        raise invalid_field("size", value, f"{number} is less than the minimum of 1")
    if number > MAX_SIZE_GB:
        raise invalid_field("size", value, f"{number} is greater than the maximum of {MAX_SIZE_GB}")
    return number


@bounded_messages
def validate_create(body: api_pb2.VolumeCreate, version: Microversion) -> VolumeCreateInput:
    """Cinder's create schema, then its body checks; raises InvalidInput with Cinder's text."""

    def get(name: str) -> JsonValue:
        return to_python(getattr(body, name)) if body.HasField(name) else None

    name = check_name("name", get("name"))
    display_name = check_name("display_name", get("display_name"))
    description = check_description("description", get("description"))
    display_description = check_description("display_description", get("display_description"))
    volume_type = _optional_string("volume_type", get("volume_type"))
    metadata = check_metadata("metadata", get("metadata"), allow_null=True)
    snapshot_id = _optional_uuid("snapshot_id", get("snapshot_id"))
    source_volid = _optional_uuid("source_volid", get("source_volid"))
    consistencygroup_id = _optional_uuid("consistencygroup_id", get("consistencygroup_id"))
    size = _size(get("size"))
    availability_zone = _optional_string("availability_zone", get("availability_zone"), 1)
    multiattach = _optional_boolean("multiattach", get("multiattach"))
    image_id = _optional_string("image_id", get("image_id"))
    image_ref = _optional_string("imageRef", get("imageRef"))
    group_id = _optional_string("group_id", get("group_id")) if version.at_least(13) else None
    backup_id = _optional_uuid("backup_id", get("backup_id")) if version.at_least(47) else None
    return VolumeCreateInput(
        size=size,
        name=name if body.HasField("name") else display_name,
        description=description if body.HasField("description") else display_description,
        volume_type=volume_type or None,
        availability_zone=availability_zone,
        metadata=metadata,
        snapshot_id=snapshot_id,
        source_volid=source_volid,
        consistencygroup_id=consistencygroup_id,
        image_ref=image_ref or image_id or None,
        group_id=group_id or None,
        backup_id=backup_id,
        multiattach=multiattach,
    )
