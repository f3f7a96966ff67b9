"""A snapshot's request bodies, checked as Cinder's schemas (``cinder/api/schemas/snapshots.py``,
``snapshot_actions.py``, ``admin_actions.py``) and controller checks, with Cinder's messages.

Checks run in the order of Cinder's schema properties, so the first error reported is the one
Cinder reports; the rules are ``services.api.schema``'s. Names refuse control characters and
descriptions keep tabs and line breaks, as volumes' do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import struct_pb2

from cindermesh.db.models import SnapshotStatus
from cindermesh.errors import InvalidInput
from services.api.edge.microversion import Microversion
from services.api.schema import (
    DESCRIPTION_PATTERN,
    NO_CONTROL_PATTERN,
    UUID_LIKE,
    JsonValue,
    bounded_messages,
    check_boolean,
    check_no_additional,
    check_present,
    check_string,
    check_string_map,
    check_type,
    invalid_field,
    invalid_input,
    not_valid_under_any,
    require_object,
    required_property,
    to_python,
)

__all__ = [
    "ALL_STATUSES",
    "SNAPSHOT_IN_USE_FLAG_MSG",
    "SnapshotChange",
    "SnapshotCreateInput",
    "StatusUpdate",
    "parse_create",
    "parse_reset_status",
    "parse_update",
    "parse_update_status",
]

#: Cinder's ``SnapshotStatus.ALL``, in its order (its messages list them).
ALL_STATUSES = (
    SnapshotStatus.ERROR,
    SnapshotStatus.AVAILABLE,
    SnapshotStatus.CREATING,
    SnapshotStatus.DELETING,
    SnapshotStatus.DELETED,
    "updating",
    SnapshotStatus.ERROR_DELETING,
    SnapshotStatus.UNMANAGING,
    SnapshotStatus.BACKING_UP,
    SnapshotStatus.RESTORING,
)
SNAPSHOT_IN_USE_FLAG_MSG = (
    "Since microversion 3.66 the 'force' flag is invalid for this request.  For backward "
    "compatability, however, when the 'force' flag is passed with a value evaluating to True, "
    "it is silently ignored."
)
_CREATE_KEYS = ("name", "display_name", "description", "volume_id", "force", "metadata")
_UPDATE_KEYS = ("name", "description", "display_name", "display_description")


@dataclass(frozen=True)
class SnapshotCreateInput:
    volume_id: str | None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: Whether an ``in-use`` volume may be snapshotted (``force``, or 3.66's default).
    allow_in_use: bool = False


def _text(name: str, value: JsonValue, pattern: str) -> str | None:
    """``name_allow_zero_min_length`` / ``description``: a string of at most 255 characters
    or null; kept stripped (Cinder's ``clean_name_and_description``)."""
    text = check_string(name, value, nullable=True, pattern=pattern)
    return text.strip() if text is not None else None


def _uuid_or_null(name: str, value: JsonValue) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or UUID_LIKE.match(value) is None:
        raise invalid_field(name, value, not_valid_under_any(value))
    return value


@bounded_messages
def parse_create(
    body: struct_pb2.Value, present: bool, version: Microversion
) -> SnapshotCreateInput:
    """Cinder's create schema, then its controller's ``force`` rule."""
    check_present(present, "snapshot")
    snapshot = require_object("snapshot", to_python(body))
    texts = {
        key: _text(key, snapshot[key], pattern)
        for key, pattern in (
            ("name", NO_CONTROL_PATTERN),
            ("display_name", NO_CONTROL_PATTERN),
            ("description", DESCRIPTION_PATTERN),
        )
        if key in snapshot
    }
    volume_id = _uuid_or_null("volume_id", snapshot.get("volume_id"))
    force = check_boolean("force", snapshot["force"]) if "force" in snapshot else None
    metadata = check_string_map("metadata", snapshot.get("metadata"), nullable=True)
    if "volume_id" not in snapshot:
        raise invalid_field("snapshot", snapshot, required_property("volume_id"))
    check_no_additional("snapshot", snapshot, _CREATE_KEYS)
    in_use_default = version.at_least(66)
    if force is False and in_use_default:
        raise InvalidInput(SNAPSHOT_IN_USE_FLAG_MSG)
    return SnapshotCreateInput(
        volume_id=volume_id,
        name=texts["name"] if "name" in texts else texts.get("display_name"),
        description=texts.get("description"),
        metadata=metadata,
        allow_in_use=bool(force) or in_use_default,
    )


@dataclass(frozen=True)
class SnapshotChange:
    """What an update asks for: only the fields flagged ``set_*`` change."""

    set_name: bool = False
    name: str | None = None
    set_description: bool = False
    description: str | None = None


@bounded_messages
def parse_update(body: struct_pb2.Value, present: bool) -> SnapshotChange:
    """Cinder's update schema: one of name, description, display_name, display_description
    and nothing else (``name`` wins over ``display_name``, as Cinder renames it last)."""
    check_present(present, "snapshot")
    snapshot = require_object("snapshot", to_python(body))
    names = {
        k: _text(k, snapshot[k], NO_CONTROL_PATTERN)
        for k in ("name", "display_name")
        if k in snapshot
    }
    descriptions = {
        k: _text(k, snapshot[k], DESCRIPTION_PATTERN)
        for k in ("description", "display_description")
        if k in snapshot
    }
    check_no_additional("snapshot", snapshot, _UPDATE_KEYS)
    if not names and not descriptions:
        raise invalid_field("snapshot", snapshot, not_valid_under_any(snapshot))
    return SnapshotChange(
        set_name=bool(names),
        name=names["name"] if "name" in names else names.get("display_name"),
        set_description=bool(descriptions),
        description=(
            descriptions["description"]
            if "description" in descriptions
            else descriptions.get("display_description")
        ),
    )


def _action_object(name: str, body: struct_pb2.Value, present: bool) -> dict[str, JsonValue]:
    check_present(present, name)
    return require_object(name, to_python(body))


@bounded_messages
def parse_reset_status(body: struct_pb2.Value, present: bool) -> str:
    """``os-reset_status``: ``{"status": <a snapshot status>}``; the status, lower-cased."""
    action = _action_object("os-reset_status", body, present)
    if "status" in action:
        status = action["status"]
        check_type("status", status, ("string",))
        assert isinstance(status, str)
        if not status or status.lower() not in ALL_STATUSES:
            raise InvalidInput(
                f"Snapshot status: {status} is invalid, valid statuses are: {ALL_STATUSES!r}."
            )
    else:
        raise invalid_field("os-reset_status", action, required_property("status"))
    check_no_additional("os-reset_status", action, ("status",))
    return status.lower()


@dataclass(frozen=True)
class StatusUpdate:
    status: str
    progress: str | None = None


def _check_progress(progress: JsonValue) -> str | None:
    """Cinder's ``progress`` format: an integer percentage, 0% to 100%."""
    if not progress or not isinstance(progress, str):
        return None
    try:
        number = int(progress[:-1])
    except ValueError:
        raise invalid_input("progress must be an integer percentage") from None
    if number < 0 or number > 100 or progress[-1] != "%":
        raise invalid_input("progress must be an integer percentage between 0 and 100")
    return progress


@bounded_messages
def parse_update_status(body: struct_pb2.Value, present: bool) -> StatusUpdate:
    """``os-update_snapshot_status``: ``{"status": "...", "progress": "<n>%"}``."""
    action = _action_object("os-update_snapshot_status", body, present)
    status = action.get("status")
    if "status" in action:
        check_type("status", status, ("string",))
    progress = _check_progress(action.get("progress"))
    if "status" not in action:
        raise invalid_field("os-update_snapshot_status", action, required_property("status"))
    check_no_additional("os-update_snapshot_status", action, ("status", "progress"))
    assert isinstance(status, str)
    return StatusUpdate(status=status, progress=progress)
