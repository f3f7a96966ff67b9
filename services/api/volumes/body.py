"""A volume's request bodies: Cinder's create-volume JSON schema and its controller checks
that need no database (the first half of the seed's ExtractVolumeRequestTask), and the
schemas of an update (``volume`` with name/description/metadata and nothing else), of the
metadata (a flat map of strings) and of one ``meta`` item (exactly one key).

Bodies arrive as ``google.protobuf.Value``s (a create as ``VolumeCreate`` of them).

Checks run in the order of Cinder's schema properties, so the first error reported is the one
Cinder reports, with Cinder's message; the rules themselves are ``services.api.schema``'s.
Names and metadata values refuse control characters (``NO_CONTROL_PATTERN``), descriptions
keep tabs and line breaks (``DESCRIPTION_PATTERN``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import struct_pb2

from cindermesh.errors import InvalidInput
from cindermesh.scheduler_hints import SchedulerHints
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.schema import (
    DESCRIPTION_PATTERN,
    NO_CONTROL_PATTERN,
    UUID_LIKE,
    JsonValue,
    bounded_messages,
    check_no_additional,
    check_non_empty,
    check_optional_boolean,
    check_pattern,
    check_present,
    check_string,
    check_string_length,
    check_string_map,
    check_type,
    invalid_field,
    not_valid_under_any,
    require_object,
    to_python,
)

__all__ = [
    "MAX_SIZE_GB",
    "VolumeChange",
    "VolumeCreateInput",
    "check_description",
    "check_name",
    "parse_meta",
    "parse_metadata",
    "parse_scheduler_hints",
    "parse_update",
    "validate_create",
]

MAX_SIZE_GB = 2147483647
_DIGITS = re.compile(r"^[0-9]+$")


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


def _text_with_length_format(label: str, pattern: str) -> Callable[[str, JsonValue], str | None]:
    """name/description: string or null; too long after stripping -> InvalidInput; then no
    control characters in what is kept (``pattern``)."""

    def check(name: str, value: JsonValue) -> str | None:
        check_type(name, value, ("string", "null"))
        if not isinstance(value, str):
            return None
        stripped = value.strip()
        check_string_length(label, stripped)
        check_pattern(name, stripped, pattern)
        return stripped

    return check


check_name = _text_with_length_format("name", NO_CONTROL_PATTERN)
check_description = _text_with_length_format("description", DESCRIPTION_PATTERN)


def _optional_string(name: str, value: JsonValue, min_length: int = 0) -> str | None:
    return check_string(name, value, nullable=True, min_length=min_length)


def _optional_uuid(name: str, value: JsonValue) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or UUID_LIKE.match(value) is None:
        raise invalid_field(name, value, not_valid_under_any(value))
    return value


def _size(value: JsonValue) -> int | None:
    check_type("size", value, ("integer", "string", "null"))
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


_HINTS = "OS-SCH-HNT:scheduler_hints"


def _hinted_volumes(name: str, value: JsonValue) -> tuple[str, ...]:
    """``same_host``/``different_host``: one volume uuid, or an array of distinct ones."""
    field_name = f"{_HINTS}/{name}"
    if isinstance(value, str) and UUID_LIKE.match(value) is not None:
        return (value,)
    uuids = isinstance(value, list) and all(
        isinstance(v, str) and UUID_LIKE.match(v) is not None for v in value
    )
    if uuids and isinstance(value, list) and len(set(map(str, value))) == len(value):
        return tuple(str(v) for v in value)
    raise invalid_field(field_name, value, not_valid_under_any(value))


@bounded_messages
def parse_scheduler_hints(hints: struct_pb2.Value) -> SchedulerHints:
    """Cinder's create schema for ``OS-SCH-HNT:scheduler_hints`` (an object or null; other
    keys are allowed and ignored, as Cinder's filters ignore them) and the hints placement
    uses."""
    value = to_python(hints)
    check_type(_HINTS, value, ("object", "null"))
    if not isinstance(value, dict):
        return SchedulerHints()
    if (instance := value.get("local_to_instance")) is not None:
        _optional_uuid(f"{_HINTS}/local_to_instance", instance)
    same = _hinted_volumes("same_host", value["same_host"]) if "same_host" in value else ()
    different = (
        _hinted_volumes("different_host", value["different_host"])
        if "different_host" in value
        else ()
    )
    query = value.get("query")
    if query is not None:
        check_type(f"{_HINTS}/query", query, ("string", "object"))
    text = query if isinstance(query, str) else json.dumps(query) if query else ""
    return SchedulerHints(same_host=same, different_host=different, query=text)


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
    metadata = check_string_map("metadata", get("metadata"), nullable=True)
    snapshot_id = _optional_uuid("snapshot_id", get("snapshot_id"))
    source_volid = _optional_uuid("source_volid", get("source_volid"))
    consistencygroup_id = _optional_uuid("consistencygroup_id", get("consistencygroup_id"))
    size = _size(get("size"))
    availability_zone = _optional_string("availability_zone", get("availability_zone"), 1)
    multiattach = check_optional_boolean("multiattach", get("multiattach"))
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


_UPDATE_KEYS = ("name", "display_name", "description", "display_description", "metadata")


@dataclass(frozen=True)
class VolumeChange:
    """What an update asks for: only the fields flagged ``set_*`` (or a metadata) change."""

    set_name: bool = False
    name: str | None = None
    set_description: bool = False
    description: str | None = None
    #: Replaces all metadata when given.
    metadata: dict[str, str] | None = None


@bounded_messages
def parse_update(body: struct_pb2.Value, present: bool, ctx: RequestContext) -> VolumeChange:
    """Cinder's volume update schema."""
    check_present(present, "volume")
    raw = to_python(body)
    volume = require_object("volume", raw)
    names = {k: check_name(k, volume[k]) for k in ("name", "display_name") if k in volume}
    descriptions = {
        k: check_description(k, volume[k])
        for k in ("description", "display_description")
        if k in volume
    }
    metadata = (
        check_string_map("metadata", volume["metadata"], nullable=False)
        if "metadata" in volume
        else None
    )
    check_no_additional("volume", volume, _UPDATE_KEYS)
    if ctx.version.at_least(53) and not volume:
        raise invalid_field("volume", raw, not_valid_under_any(raw))
    return VolumeChange(
        set_name=bool(names),
        name=names.get("name", names.get("display_name")),
        set_description=bool(descriptions),
        description=descriptions.get("description", descriptions.get("display_description")),
        metadata=metadata,
    )


@bounded_messages
def parse_metadata(body: struct_pb2.Value, present: bool) -> dict[str, str]:
    """Cinder's ``{"metadata": {...}}`` schema (POST and PUT of the whole metadata)."""
    check_present(present, "metadata")
    return check_string_map("metadata", to_python(body), nullable=False)


@bounded_messages
def parse_meta(body: struct_pb2.Value, present: bool, key: str) -> tuple[str, str]:
    """Cinder's ``{"meta": {"<key>": "v"}}`` schema; the key must be the URL's."""
    check_present(present, "meta")
    raw = to_python(body)
    meta = check_string_map("meta", raw, nullable=False)
    check_non_empty("meta", raw)
    if len(meta) > 1:
        raise invalid_field("meta", raw, f"{raw!r} has too many properties")
    if key not in meta:
        raise InvalidInput("Request body and URI mismatch")
    return key, meta[key]
