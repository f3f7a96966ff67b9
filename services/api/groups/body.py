"""The generic group bodies: Cinder's ``group_types``, ``group_specs``, ``groups`` and
``group_snapshots`` schemas and their controllers' checks that need no database, in the order
jsonschema reports them (each object's properties, then ``required``, then unknown keys), with
Cinder's messages. Group specs share the volume-type extra specs' schema
(``services.api.types.body``)."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import struct_pb2

from cindermesh.errors import InvalidInput
from services.api.schema import (
    NO_CONTROL_PATTERN,
    UUID_LIKE,
    JsonValue,
    bounded_messages,
    check_boolean,
    check_no_additional,
    check_non_empty,
    check_pattern,
    check_present,
    check_string,
    check_string_map,
    check_type,
    invalid_field,
    invalid_input,
    not_valid_under_any,
    object_to_python,
    printable_pattern,
    require_object,
    required_property,
    to_python,
)

__all__ = [
    "GroupCreateInput",
    "GroupSnapshotCreateInput",
    "GroupSourceInput",
    "GroupTypeCreateInput",
    "GroupTypeUpdateInput",
    "GroupUpdateInput",
    "validate_group_create",
    "validate_group_delete",
    "validate_group_reset_status",
    "validate_group_snapshot_create",
    "validate_group_snapshot_reset_status",
    "validate_group_source",
    "validate_group_type_create",
    "validate_group_type_update",
    "validate_group_update",
]

#: Cinder's ``fields.GroupStatus.ALL`` and ``fields.GroupSnapshotStatus.ALL``, in order.
GROUP_STATUSES = (
    "error", "available", "creating", "deleting", "deleted", "updating", "in-use",
    "error_deleting",
)  # fmt: skip
GROUP_SNAPSHOT_STATUSES = (
    "error", "available", "creating", "deleting", "deleted", "updating", "error_deleting",
)  # fmt: skip


def _description(value: JsonValue) -> str | None:
    """``parameter_types.description``."""
    return check_string("description", value, nullable=True, pattern=printable_pattern())


def _optional_name(value: JsonValue) -> str | None:
    """``parameter_types.name_allow_zero_min_length``."""
    return check_string("name", value, nullable=True)


def _stripped(value: str | None) -> str | None:
    """The controllers strip a name or description that is not empty."""
    return value.strip() if value else value


def _uuid(name: str, value: JsonValue) -> str:
    check_type(name, value, ("string",))
    assert isinstance(value, str)
    if UUID_LIKE.match(value) is None:
        raise invalid_field(name, value, f"{value!r} is not a 'uuid'")
    return value


def _body(name: str, body: struct_pb2.Struct) -> dict[str, JsonValue]:
    """The body's one object (``required``, then no other key)."""
    root = object_to_python(body)
    if name in root:
        require_object(name, root[name])
    check_present(name in root, name)
    check_no_additional(None, root, (name,))
    value = root[name]
    assert isinstance(value, dict)
    return value


def _action(name: str, value: struct_pb2.Value) -> dict[str, JsonValue]:
    """An action's object (the body's only key, which the gateway routed on)."""
    return require_object(name, to_python(value))


# --- group types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupTypeCreateInput:
    name: str
    description: str | None
    is_public: bool
    group_specs: dict[str, str]


@dataclass(frozen=True)
class GroupTypeUpdateInput:
    """None: unchanged."""

    name: str | None
    description: str | None
    is_public: bool | None


def _type_name(value: JsonValue) -> str:
    """``parameter_types.name``: a string of 1 to 255 characters in the ``name`` format."""
    name = check_string("name", value, min_length=1)
    assert name is not None
    if not name.strip():
        raise InvalidInput("An invalid 'name' value was provided. The 'name' can not be empty.")
    check_pattern("name", name, NO_CONTROL_PATTERN)
    return name


@bounded_messages
def validate_group_type_create(body: struct_pb2.Struct) -> GroupTypeCreateInput:
    group_type = _body("group_type", body)
    name = _type_name(group_type["name"]) if "name" in group_type else None
    description = _description(group_type.get("description"))
    is_public = (
        check_boolean("is_public", group_type["is_public"]) if "is_public" in group_type else True
    )
    specs = check_string_map(
        "group_specs", group_type.get("group_specs"), nullable=True, null_values=True
    )
    if name is None:
        raise invalid_field("group_type", group_type, required_property("name"))
    check_no_additional(
        "group_type", group_type, ("name", "description", "is_public", "group_specs")
    )
    return GroupTypeCreateInput(name, description, is_public, specs)


@bounded_messages
def validate_group_type_update(body: struct_pb2.Struct) -> GroupTypeUpdateInput:
    """The schema, then the controller's two refusals."""
    group_type = _body("group_type", body)
    name = _optional_name(group_type.get("name"))
    description = _description(group_type.get("description"))
    public = group_type.get("is_public")
    is_public = check_boolean("is_public", public) if public is not None else None
    check_no_additional("group_type", group_type, ("name", "description", "is_public"))
    if name and not name.strip():
        raise InvalidInput("Group type name can not be empty.")
    if name is None and description is None and is_public is None:
        raise InvalidInput("Specify group type name, description or a combination thereof.")
    return GroupTypeUpdateInput(name, description, is_public)


# --- groups --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCreateInput:
    name: str | None
    description: str | None
    group_type: str
    volume_types: tuple[str, ...]
    availability_zone: str | None


@dataclass(frozen=True)
class GroupUpdateInput:
    name: str | None
    description: str | None
    add_volumes: tuple[str, ...]
    remove_volumes: tuple[str, ...]


@dataclass(frozen=True)
class GroupSourceInput:
    name: str | None
    description: str | None
    group_snapshot_id: str | None
    source_group_id: str | None


def _trimmed_length(label: str, value: str) -> None:
    """Cinder's ``_validate_string_length(..., min_length=1, remove_whitespaces=True)``."""
    stripped = value.strip()
    if not stripped:
        raise invalid_input(f"{label} has 0 characters, less than 1.")
    if len(stripped) > 255:
        raise invalid_input(f"{label} has {len(stripped)} characters, more than 255.")


def _volume_types(value: JsonValue) -> tuple[str, ...]:
    check_type("volume_types", value, ("array",))
    assert isinstance(value, list)
    if not value:
        raise invalid_field("volume_types", value, "[] is too short")
    for index, item in enumerate(value):
        check_string(str(index), item)
    if len({repr(v) for v in value}) != len(value):
        raise invalid_field("volume_types", value, f"{value!r} has non-unique elements")
    return tuple(str(v) for v in value)


@bounded_messages
def validate_group_create(body: struct_pb2.Struct) -> GroupCreateInput:
    group = _body("group", body)
    description = _description(group.get("description"))
    group_type = group.get("group_type")
    if "group_type" in group:
        check_type("group_type", group_type, ("string",))
        assert isinstance(group_type, str)
        _trimmed_length("group_type", group_type)
    name = _optional_name(group.get("name"))
    volume_types = _volume_types(group["volume_types"]) if "volume_types" in group else ()
    zone = group.get("availability_zone")
    check_type("availability_zone", zone, ("string", "null"))
    if isinstance(zone, str):
        _trimmed_length("availability_zone", zone)
    for key in ("group_type", "volume_types"):
        if key not in group:
            raise invalid_field("group", group, required_property(key))
    allowed = ("description", "group_type", "name", "volume_types", "availability_zone")
    check_no_additional("group", group, allowed)
    assert isinstance(group_type, str)
    return GroupCreateInput(
        name=_stripped(name),
        description=_stripped(description),
        group_type=group_type,
        volume_types=volume_types,
        availability_zone=zone if isinstance(zone, str) else None,
    )


def _volume_list(value: str | None) -> tuple[str, ...]:
    """Cinder's comma-separated ids (``add_volumes``/``remove_volumes``)."""
    if not value:
        return ()
    return tuple(value.strip(",").split(","))


@bounded_messages
def validate_group_update(body: struct_pb2.Struct) -> GroupUpdateInput:
    group = _body("group", body)
    description = _description(group.get("description"))
    name = _optional_name(group.get("name"))
    add = check_string("add_volumes", group.get("add_volumes"), nullable=True)
    remove = check_string("remove_volumes", group.get("remove_volumes"), nullable=True)
    check_pattern("add_volumes", add, printable_pattern())
    check_pattern("remove_volumes", remove, printable_pattern())
    fields = ("name", "description", "add_volumes", "remove_volumes")
    if not any(key in group for key in fields):
        raise invalid_field("group", group, not_valid_under_any(group))
    check_no_additional("group", group, fields)
    return GroupUpdateInput(
        name=_stripped(name),
        description=_stripped(description),
        add_volumes=_volume_list(add),
        remove_volumes=_volume_list(remove),
    )


@bounded_messages
def validate_group_source(value: struct_pb2.Value) -> GroupSourceInput:
    """``create-from-src``: exactly one of ``group_snapshot_id`` and ``source_group_id``."""
    source = _action("create-from-src", value)
    description = _description(source.get("description"))
    name = _optional_name(source.get("name"))
    ids = {
        key: _uuid(key, source[key])
        for key in ("source_group_id", "group_snapshot_id")
        if key in source
    }
    if len(ids) != 1:
        message = (
            f"{source!r} is valid under each of {{'required': ['source_group_id']}}, "
            "{'required': ['group_snapshot_id']}"
            if ids
            else not_valid_under_any(source)
        )
        raise invalid_field("create-from-src", source, message)
    allowed = ("description", "name", "source_group_id", "group_snapshot_id")
    check_no_additional("create-from-src", source, allowed)
    return GroupSourceInput(
        name=_stripped(name),
        description=_stripped(description),
        group_snapshot_id=ids.get("group_snapshot_id"),
        source_group_id=ids.get("source_group_id"),
    )


@bounded_messages
def validate_group_delete(value: struct_pb2.Value) -> bool:
    """``{"delete": {"delete-volumes": <boolean>}}``; whether to delete the volumes."""
    delete = _action("delete", value)
    flag = (
        check_boolean("delete-volumes", delete["delete-volumes"])
        if ("delete-volumes" in delete)
        else False
    )
    check_no_additional("delete", delete, ("delete-volumes",))
    return flag


def _status(value: struct_pb2.Value) -> str:
    reset = _action("reset_status", value)
    if "status" not in reset:
        raise invalid_field("reset_status", reset, required_property("status"))
    status = reset["status"]
    check_type("status", status, ("string",))
    assert isinstance(status, str)
    check_no_additional("reset_status", reset, ("status",))
    check_non_empty("status", status)
    return status


@bounded_messages
def validate_group_reset_status(value: struct_pb2.Value) -> str:
    """The ``group_status`` format (which checks Cinder's group snapshot statuses)."""
    status = _status(value)
    if not status.strip():
        raise InvalidInput("Invalid Group Status: The 'status' can not be empty.")
    if status.lower() not in GROUP_SNAPSHOT_STATUSES:
        raise InvalidInput(
            f"Invalid Group Status: Group status: {status} is invalid, valid status are: "
            f"{GROUP_STATUSES}."
        )
    return status.lower()


@bounded_messages
def validate_group_snapshot_reset_status(value: struct_pb2.Value) -> str:
    status = _status(value)
    if not status.strip():
        raise InvalidInput("Invalid GroupSnapshot Status: The 'status' can not be empty.")
    if status.lower() not in GROUP_SNAPSHOT_STATUSES:
        raise InvalidInput(
            f"Invalid GroupSnapshot Status: Group snapshot status: {status} is invalid, valid "
            f"statuses are: {GROUP_SNAPSHOT_STATUSES}."
        )
    return status.lower()


# --- group snapshots -----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSnapshotCreateInput:
    group_id: str
    name: str | None
    description: str | None


@bounded_messages
def validate_group_snapshot_create(body: struct_pb2.Struct) -> GroupSnapshotCreateInput:
    snapshot = _body("group_snapshot", body)
    if "group_id" in snapshot:
        _uuid("group_id", snapshot["group_id"])
    name = _optional_name(snapshot.get("name"))
    description = _description(snapshot.get("description"))
    if "group_id" not in snapshot:
        raise invalid_field("group_snapshot", snapshot, required_property("group_id"))
    check_no_additional("group_snapshot", snapshot, ("group_id", "name", "description"))
    group_id = snapshot["group_id"]
    assert isinstance(group_id, str)
    return GroupSnapshotCreateInput(group_id, name, description)
