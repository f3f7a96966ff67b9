"""An attachment's request bodies, checked as Cinder's schemas
(``cinder/api/schemas/attachments.py``), with Cinder's messages; the rules are
``services.api.schema``'s."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import struct_pb2

from services.api.edge.microversion import Microversion
from services.api.schema import (
    JsonValue,
    bounded_messages,
    check_no_additional,
    check_non_empty,
    check_present,
    check_type,
    check_uuid,
    invalid_field,
    require_object,
    required_property,
    to_python,
)

__all__ = [
    "ATTACH_MODES",
    "NULL_MODE",
    "AttachmentCreateInput",
    "parse_complete",
    "parse_create",
    "parse_update",
]

#: The modes an attachment may be asked in (3.54); Cinder's ``null`` when none is given.
ATTACH_MODES = ("rw", "ro")
NULL_MODE = "null"


@dataclass(frozen=True)
class AttachmentCreateInput:
    volume_id: str
    instance_uuid: str | None
    connector: dict[str, JsonValue] | None
    #: ``rw``, ``ro``, or Cinder's ``null`` (not given).
    mode: str


@bounded_messages
def parse_create(
    body: struct_pb2.Value, present: bool, version: Microversion
) -> AttachmentCreateInput:
    """Cinder's ``create`` schema (``create_v354`` from 3.54: ``mode``)."""
    check_present(present, "attachment")
    attachment = require_object("attachment", to_python(body))
    instance_uuid = (
        check_uuid("instance_uuid", attachment["instance_uuid"])
        if "instance_uuid" in attachment
        else None
    )
    connector = attachment.get("connector")
    check_type("connector", connector, ("object", "null"))
    volume_id = (
        check_uuid("volume_uuid", attachment["volume_uuid"])
        if "volume_uuid" in attachment
        else None
    )
    allowed = ["instance_uuid", "connector", "volume_uuid"]
    mode = NULL_MODE
    if version.at_least(54):
        allowed.append("mode")
        if "mode" in attachment:
            given = attachment["mode"]
            check_type("mode", given, ("string",))
            if given not in ATTACH_MODES:
                raise invalid_field("mode", given, f"{given!r} is not one of {list(ATTACH_MODES)}")
            assert isinstance(given, str)
            mode = given
    if volume_id is None:
        raise invalid_field("attachment", attachment, required_property("volume_uuid"))
    check_no_additional("attachment", attachment, allowed)
    return AttachmentCreateInput(
        volume_id=volume_id,
        instance_uuid=instance_uuid,
        connector=connector if isinstance(connector, dict) and connector else None,
        mode=mode,
    )


@bounded_messages
def parse_update(body: struct_pb2.Value, present: bool) -> dict[str, JsonValue]:
    """Cinder's ``update`` schema: ``{"attachment": {"connector": {...}}}``, a connector of at
    least one key; the connector."""
    check_present(present, "attachment")
    attachment = require_object("attachment", to_python(body))
    if "connector" in attachment:
        connector = require_object("connector", attachment["connector"])
        check_non_empty("connector", connector)
    else:
        raise invalid_field("attachment", attachment, required_property("connector"))
    check_no_additional("attachment", attachment, ("connector",))
    return connector


def parse_complete(present: bool) -> None:
    """Cinder's ``complete`` schema: ``{"os-complete": <anything>}``."""
    check_present(present, "os-complete")
