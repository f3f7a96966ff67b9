"""A transfer's request bodies: Cinder's ``volume_transfer`` schemas (``create``, from 3.55
on ``volume-transfers`` ``create_v355`` with ``no_snapshots``; ``accept``), checked in the
order of their properties so that the first error is the one Cinder reports."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import struct_pb2

from services.api.schema import (
    UUID_LIKE,
    JsonValue,
    bounded_messages,
    check_boolean,
    check_name_skip_spaces,
    check_no_additional,
    check_present,
    check_type,
    invalid_field,
    not_valid_under_any,
    object_to_python,
    require_object,
    required_property,
)

__all__ = ["TransferCreateInput", "validate_accept", "validate_create"]


@dataclass(frozen=True)
class TransferCreateInput:
    volume_id: str
    name: str | None
    no_snapshots: bool


def _uuid(name: str, value: JsonValue) -> str:
    """``parameter_types.uuid``: a string in the ``uuid`` format."""
    check_type(name, value, ("string",))
    assert isinstance(value, str)
    if UUID_LIKE.match(value) is None:
        raise invalid_field(name, value, f"{value!r} is not a 'uuid'")
    return value


def _name(value: JsonValue) -> str | None:
    """``oneOf`` a string in the ``name_skip_leading_trailing_spaces`` format, or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_field("name", value, not_valid_under_any(value))
    return check_name_skip_spaces(value)


@bounded_messages
def validate_create(body: struct_pb2.Struct, with_snapshots_field: bool) -> TransferCreateInput:
    """``{"transfer": {"volume_id": <uuid>, "name": ..., "no_snapshots": <boolean>}}``;
    ``no_snapshots`` only where ``with_snapshots_field`` (3.55's schema)."""
    root = object_to_python(body)
    allowed = (
        ("volume_id", "name", "no_snapshots") if with_snapshots_field else ("volume_id", "name")
    )
    if "transfer" in root:
        transfer = require_object("transfer", root["transfer"])
        if "volume_id" in transfer:
            _uuid("volume_id", transfer["volume_id"])
        name = _name(transfer.get("name"))
        no_snapshots = False
        if with_snapshots_field and "no_snapshots" in transfer:
            no_snapshots = check_boolean("no_snapshots", transfer["no_snapshots"])
        if "volume_id" not in transfer:
            raise invalid_field("transfer", transfer, required_property("volume_id"))
        check_no_additional("transfer", transfer, allowed)
    check_present("transfer" in root, "transfer")
    check_no_additional(None, root, ("transfer",))
    volume_id = transfer["volume_id"]
    assert isinstance(volume_id, str)
    return TransferCreateInput(volume_id=volume_id, name=name, no_snapshots=no_snapshots)


@bounded_messages
def validate_accept(body: struct_pb2.Struct) -> str:
    """``{"accept": {"auth_key": <string or integer>}}``; the key as text."""
    root = object_to_python(body)
    if "accept" in root:
        accept = require_object("accept", root["accept"])
        if "auth_key" in accept:
            check_type("auth_key", accept["auth_key"], ("string", "integer"))
        else:
            raise invalid_field("accept", accept, required_property("auth_key"))
        check_no_additional("accept", accept, ("auth_key",))
    check_present("accept" in root, "accept")
    check_no_additional(None, root, ("accept",))
    return str(accept["auth_key"])
