"""The bodies of a volume's actions: Cinder's schemas (``cinder/api/schemas/volume_actions.py``,
``admin_actions.py``, ``volumes.py``'s ``revert``) and their controllers' parsing, with Cinder's
messages. Each action's value arrives as a ``google.protobuf.Value``; the actions whose schema
is ``{}`` (reserve, unreserve, begin/roll detaching, force delete) take any value and have no
parser here.

Checks run in the order of Cinder's schema keywords (type, format, properties, required,
additionalProperties), so the first error reported is Cinder's; the rules are
``services.api.schema``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf import struct_pb2

from cindermesh.db.attachments import LegacyAttach
from cindermesh.db.models import AttachStatus
from cindermesh.errors import InvalidInput
from services.api.schema import (
    UUID_LIKE,
    JsonValue,
    bounded_messages,
    check_boolean,
    check_no_additional,
    check_type,
    check_uuid,
    invalid_field,
    not_valid_under_any,
    require_object,
    required_property,
    to_python,
)

__all__ = [
    "MIGRATION_POLICIES",
    "VOLUME_STATUSES",
    "ForceDetachRequest",
    "StatusReset",
    "check_volume_size",
    "parse_attach",
    "parse_bootable",
    "parse_detach",
    "parse_extend",
    "parse_force_detach",
    "parse_initialize_connection",
    "parse_readonly",
    "parse_reset_status",
    "parse_retype",
    "parse_revert",
    "parse_terminate_connection",
    "sanitize_hostname",
]

#: Cinder's ``DB_MAX_INT``: the largest size a schema accepts.
MAX_SIZE_GB = 2147483647
_DIGITS = re.compile(r"^[0-9]+$")
#: Cinder's ``fields.VolumeStatus.ALL``, in its order (its message shows the tuple).
VOLUME_STATUSES = (
    "creating", "available", "deleting", "error", "error_deleting", "error_managing",
    "managing", "attaching", "in-use", "detaching", "maintenance", "restoring-backup",
    "error_restoring", "reserved", "awaiting-transfer", "backing-up", "error_backing-up",
    "error_extending", "downloading", "uploading", "retyping", "extending",
)  # fmt: skip
#: What ``os-reset_status`` may set ``attach_status`` to (Cinder's list, in its order).
RESET_ATTACH_STATUSES = [AttachStatus.ATTACHED, AttachStatus.DETACHED]
#: Cinder's ``fields.VolumeMigrationStatus.ALL``.
MIGRATION_STATUSES = ("migrating", "error", "success", "completing", "none", "starting")
MIGRATION_POLICIES = ["on-demand", "never"]


def check_volume_size(name: str, value: JsonValue) -> int:
    """``parameter_types.volume_size``: an integer of 1 to ``DB_MAX_INT``, or a string of
    digits (whose value the schema does not bound)."""
    check_type(name, value, ("integer", "string"))
    if isinstance(value, str):
        if _DIGITS.match(value) is None:
            raise invalid_field(name, value, f"{value!r} does not match '^[0-9]+$'")
        return int(value)
    assert isinstance(value, int)
    if value < 1:
        raise invalid_field(name, value, f"{value} is less than the minimum of 1")
    if value > MAX_SIZE_GB:
        raise invalid_field(name, value, f"{value} is greater than the maximum of {MAX_SIZE_GB}")
    return value


def _action_object(name: str, value: struct_pb2.Value) -> dict[str, JsonValue]:
    return require_object(name, to_python(value))


def _require(name: str, body: dict[str, JsonValue], key: str) -> JsonValue:
    if key not in body:
        raise invalid_field(name, body, required_property(key))
    return body[key]


@bounded_messages
def parse_extend(value: struct_pb2.Value) -> int:
    """``{"os-extend": {"new_size": N}}``: the new size."""
    body = _action_object("os-extend", value)
    size = check_volume_size("new_size", body["new_size"]) if "new_size" in body else None
    _require("os-extend", body, "new_size")
    check_no_additional("os-extend", body, ("new_size",))
    assert size is not None
    return size


@dataclass(frozen=True)
class StatusReset:
    """What an ``os-reset_status`` writes: the given fields, lower-cased (a migration status
    ``none`` clears it)."""

    status: str | None = None
    attach_status: str | None = None
    migration_status: str | None = None
    set_migration_status: bool = False

    def values(self) -> dict[str, object]:
        values: dict[str, object] = {}
        if self.status:
            values["status"] = self.status
        if self.attach_status:
            values["attach_status"] = self.attach_status
        if self.set_migration_status:
            values["migration_status"] = self.migration_status
        return values


def _status_field(
    body: dict[str, JsonValue], key: str, label: str, valid: tuple[str, ...] | list[str]
) -> str | None:
    value = body.get(key)
    check_type(key, value, ("string", "null"))
    if isinstance(value, str) and value and value.lower() not in valid:
        raise InvalidInput(f"{label}: {value} is invalid, valid statuses are: {valid!r}.")
    return value.lower() if isinstance(value, str) and value else None


@bounded_messages
def parse_reset_status(value: struct_pb2.Value) -> StatusReset:
    """Cinder's ``reset_status_volume`` schema and controller."""
    body = _action_object("os-reset_status", value)
    if not (body.get("status") or body.get("attach_status") or body.get("migration_status")):
        raise InvalidInput(
            "Must specify 'status', 'attach_status' or 'migration_status' for update."
        )
    status = _status_field(body, "status", "Volume status", VOLUME_STATUSES)
    attach = _status_field(body, "attach_status", "Volume attach status", RESET_ATTACH_STATUSES)
    migration = _status_field(
        body, "migration_status", "Volume migration status", MIGRATION_STATUSES
    )
    check_no_additional("os-reset_status", body, ("status", "attach_status", "migration_status"))
    return StatusReset(
        status=status,
        attach_status=attach,
        migration_status=None if migration == "none" else migration,
        set_migration_status=migration is not None,
    )


def _flag(action: str, key: str, value: struct_pb2.Value) -> bool:
    body = _action_object(action, value)
    flag = check_boolean(key, body[key]) if key in body else None
    _require(action, body, key)
    check_no_additional(action, body, (key,))
    assert flag is not None
    return flag


@bounded_messages
def parse_bootable(value: struct_pb2.Value) -> bool:
    """``{"os-set_bootable": {"bootable": <boolean>}}``."""
    return _flag("os-set_bootable", "bootable", value)


@bounded_messages
def parse_readonly(value: struct_pb2.Value) -> bool:
    """``{"os-update_readonly_flag": {"readonly": <boolean>}}``."""
    return _flag("os-update_readonly_flag", "readonly", value)


@bounded_messages
def parse_retype(value: struct_pb2.Value) -> tuple[str, str | None]:
    """``{"os-retype": {"new_type": name or id, "migration_policy": "on-demand"|"never"}}``:
    the new type and the policy (None: not given, Cinder's ``never``). A null policy fails
    the schema's enum, as in Cinder."""
    body = _action_object("os-retype", value)
    new_type = body.get("new_type")
    if "new_type" in body:
        check_type("new_type", new_type, ("string",))
    policy = body.get("migration_policy")
    if "migration_policy" in body:
        check_type("migration_policy", policy, ("string", "null"))
        if policy not in MIGRATION_POLICIES:
            message = f"{policy!r} is not one of {MIGRATION_POLICIES!r}"
            raise invalid_field("migration_policy", policy, message)
    _require("os-retype", body, "new_type")
    check_no_additional("os-retype", body, ("new_type", "migration_policy"))
    assert isinstance(new_type, str)
    return new_type, policy if isinstance(policy, str) else None


@bounded_messages
def parse_detach(value: struct_pb2.Value) -> str | None:
    """``{"os-detach": null or {"attachment_id": uuid or null}}``: the attachment's id."""
    body = to_python(value)
    check_type("os-detach", body, ("object", "null"))
    if not isinstance(body, dict):
        return None
    attachment_id = body.get("attachment_id")
    if attachment_id is not None and (
        not isinstance(attachment_id, str) or UUID_LIKE.match(attachment_id) is None
    ):
        raise invalid_field("attachment_id", attachment_id, not_valid_under_any(attachment_id))
    check_no_additional("os-detach", body, ("attachment_id",))
    return attachment_id if isinstance(attachment_id, str) else None


@bounded_messages
def parse_revert(value: struct_pb2.Value) -> str | None:
    """``{"revert": {"snapshot_id": id or null, ...}}`` (other keys allowed): the id."""
    body = _action_object("revert", value)
    snapshot_id = body.get("snapshot_id")
    if "snapshot_id" in body:
        check_type("snapshot_id", snapshot_id, ("string", "null"))
    return snapshot_id if isinstance(snapshot_id, str) else None


def _bounded_string(name: str, value: JsonValue, min_length: int = 0) -> str:
    check_type(name, value, ("string",))
    assert isinstance(value, str)
    if len(value) < min_length:
        raise invalid_field(name, value, f"{value!r} should be non-empty")
    if len(value) > 255:
        raise invalid_field(name, value, f"{value!r} is too long")
    return value


def sanitize_hostname(hostname: str) -> str:
    """Cinder's ``sanitize_hostname`` (RFC 952/1123): what ``os-attach`` records as the
    attachment's host."""
    text = hostname.encode("latin-1", "ignore").decode("latin-1")
    text = re.sub(r"[ _]", "-", text)
    text = re.sub(r"[^\w.-]+", "", text)
    return text.lower().strip(".-")


@bounded_messages
def parse_attach(value: struct_pb2.Value) -> LegacyAttach:
    """Cinder's ``attach`` schema: ``mountpoint`` required, and ``instance_uuid`` (a UUID) or
    ``host_name`` (kept sanitized, as Cinder's manager records it); ``mode`` ``rw`` or
    ``ro``."""
    body = _action_object("os-attach", value)
    instance_uuid = body.get("instance_uuid")
    if "instance_uuid" in body:
        check_uuid("instance_uuid", instance_uuid)
    mountpoint = body.get("mountpoint")
    if "mountpoint" in body:
        _bounded_string("mountpoint", mountpoint, min_length=1)
    host_name = body.get("host_name")
    if "host_name" in body:
        _bounded_string("host_name", host_name)
    mode = body.get("mode", "rw")
    if "mode" in body and mode not in ("rw", "ro"):
        raise invalid_field("mode", mode, f"{mode!r} is not one of ['rw', 'ro']")
    _require("os-attach", body, "mountpoint")
    if "instance_uuid" not in body and "host_name" not in body:
        raise invalid_field("os-attach", body, not_valid_under_any(body))
    check_no_additional("os-attach", body, ("instance_uuid", "mountpoint", "host_name", "mode"))
    assert isinstance(mountpoint, str) and isinstance(mode, str)
    return LegacyAttach(
        instance_uuid=instance_uuid if isinstance(instance_uuid, str) else None,
        host_name=sanitize_hostname(host_name) if isinstance(host_name, str) else None,
        mountpoint=mountpoint,
        mode=mode,
    )


def _connector(value: JsonValue) -> dict[str, JsonValue] | None:
    """A connector given as an object (Cinder's schemas also let a string through, which its
    manager then fails on: refused here)."""
    if isinstance(value, str):
        raise InvalidInput("Invalid input received: The connector must be an object.")
    return value if isinstance(value, dict) else None


@bounded_messages
def parse_initialize_connection(value: struct_pb2.Value) -> dict[str, JsonValue]:
    """``{"os-initialize_connection": {"connector": {...}}}``: the connector."""
    body = _action_object("os-initialize_connection", value)
    if "connector" in body:
        check_type("connector", body["connector"], ("object", "string"))
    connector = _require("os-initialize_connection", body, "connector")
    check_no_additional("os-initialize_connection", body, ("connector",))
    return _connector(connector) or {}


@bounded_messages
def parse_terminate_connection(value: struct_pb2.Value) -> dict[str, JsonValue] | None:
    """``{"os-terminate_connection": {"connector": {...} or null}}``: the connector."""
    body = _action_object("os-terminate_connection", value)
    if "connector" in body:
        check_type("connector", body["connector"], ("string", "object", "null"))
    connector = _require("os-terminate_connection", body, "connector")
    check_no_additional("os-terminate_connection", body, ("connector",))
    return _connector(connector)


@dataclass(frozen=True)
class ForceDetachRequest:
    connector: dict[str, JsonValue] | None
    attachment_id: str | None


@bounded_messages
def parse_force_detach(value: struct_pb2.Value) -> ForceDetachRequest:
    """``{"os-force_detach": {"connector": ..., "attachment_id": ...}}``, both optional."""
    body = _action_object("os-force_detach", value)
    if "connector" in body:
        check_type("connector", body["connector"], ("string", "object", "null"))
    attachment_id = body.get("attachment_id")
    if "attachment_id" in body:
        check_type("attachment_id", attachment_id, ("string", "null"))
    check_no_additional("os-force_detach", body, ("connector", "attachment_id"))
    return ForceDetachRequest(
        connector=_connector(body.get("connector")),
        attachment_id=attachment_id if isinstance(attachment_id, str) else None,
    )
