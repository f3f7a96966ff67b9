"""User messages (Cinder's ``cinder.message``): one shared way to record what went wrong with a
user's asynchronous request, in Cinder's predefined words, for ``GET /v3/{p}/messages``.

Any process that fails a user's work calls :func:`record_message` in the transaction that
records the failure (e.g. the scheduler when a volume ends in ``error`` for want of a backend:
``record_message(session, project_id=..., request_id=..., resource_uuid=volume_id,
action=Action.SCHEDULE_ALLOCATE_VOLUME, detail=Detail.NO_BACKEND_AVAILABLE)``).

The text shown is built from the ids (``user_message_text``), never from an exception's own
words (Cinder's rule: no internal detail reaches the user). The one note added to Cinder's
words is typed: a create no backend could take may name the scheduler filter that removed the
last candidate (``record_message(..., filter_name=...)``), shown only if it is one of
:data:`FILTER_NAMES`, after Cinder's text (so that clients matching Cinder's words still do):
``schedule allocate volume:Could not find any available weighted backend. Filter
CapabilitiesFilter removed the last candidate.``
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.models import Message, utcnow

__all__ = [
    "FILTER_NAMES",
    "MESSAGE_TTL",
    "Action",
    "Detail",
    "Field",
    "Resource",
    "event_id",
    "record_message",
    "user_message_text",
]

#: Cinder's ``message_ttl``: seconds a message is guaranteed to be kept (30 days).
MESSAGE_TTL = 2592000

#: The scheduler filter names a message may name (Cinder's filter classes). Kept here rather
#: than imported from ``services.scheduler.registry`` (whose ``FilterName`` holds only the
#: configurable ones; the scheduler also runs SourceBackendFilter itself); a unit test keeps
#: the two in step.
FILTER_NAMES = (
    "AvailabilityZoneFilter",
    "CapacityFilter",
    "CapabilitiesFilter",
    "SameBackendFilter",
    "DifferentBackendFilter",
    "JsonFilter",
    "IgnoreAttemptedHostsFilter",
    "RetryFilter",
    "SourceBackendFilter",
    "DriverFilter",
    "InstanceLocalityFilter",
)


class Field(NamedTuple):
    """One of Cinder's ``message_field`` entries: its id and its words."""

    id: str
    text: str


class Resource:
    VOLUME = "VOLUME"
    VOLUME_SNAPSHOT = "VOLUME_SNAPSHOT"
    VOLUME_BACKUP = "VOLUME_BACKUP"


class Action:
    """Cinder's ``message_field.Action`` entries for what cindermesh does."""

    SCHEDULE_ALLOCATE_VOLUME = Field("001", "schedule allocate volume")
    EXTEND_VOLUME = Field("007", "extend volume")
    CREATE_VOLUME_FROM_BACKEND = Field("008", "create volume from backend storage")
    SNAPSHOT_CREATE = Field("009", "create snapshot")
    SNAPSHOT_DELETE = Field("010", "delete snapshot")

    ALL = (
        SCHEDULE_ALLOCATE_VOLUME,
        EXTEND_VOLUME,
        CREATE_VOLUME_FROM_BACKEND,
        SNAPSHOT_CREATE,
        SNAPSHOT_DELETE,
    )


class Detail:
    """Cinder's ``message_field.Detail`` entries for what cindermesh can fail at."""

    UNKNOWN_ERROR = Field("001", "An unknown error occurred.")
    DRIVER_NOT_INITIALIZED = Field("002", "Driver is not initialized at present.")
    NO_BACKEND_AVAILABLE = Field("003", "Could not find any available weighted backend.")
    QUOTA_EXCEED = Field("006", "Not enough quota resource for operation.")
    DRIVER_FAILED_EXTEND = Field("010", "Volume Driver failed to extend volume.")
    DRIVER_FAILED_CREATE = Field("012", "Driver failed to create the volume.")
    SNAPSHOT_CREATE_ERROR = Field("013", "Snapshot failed to create.")
    SNAPSHOT_IS_BUSY = Field("015", "Snapshot is busy.")
    SNAPSHOT_DELETE_ERROR = Field("016", "Snapshot failed to delete.")
    VOLUME_INVALID_STATE = Field("027", "Volume status is invalid.")

    ALL = (
        UNKNOWN_ERROR,
        DRIVER_NOT_INITIALIZED,
        NO_BACKEND_AVAILABLE,
        QUOTA_EXCEED,
        DRIVER_FAILED_EXTEND,
        DRIVER_FAILED_CREATE,
        SNAPSHOT_CREATE_ERROR,
        SNAPSHOT_IS_BUSY,
        SNAPSHOT_DELETE_ERROR,
        VOLUME_INVALID_STATE,
    )


_ACTIONS = {a.id: a.text for a in Action.ALL}
_DETAILS = {d.id: d.text for d in Detail.ALL}


def event_id(resource_type: str, action: Field, detail: Field) -> str:
    """Cinder's ``VOLUME_<resource type>_<action id>_<detail id>``."""
    return f"VOLUME_{resource_type}_{action.id}_{detail.id}"


def user_message_text(
    action_id: str | None, detail_id: str | None, filter_name: str | None = None
) -> str:
    """Cinder's ``<action>:<detail>``; an unknown detail reads as the unknown error. A known
    filter name (:data:`FILTER_NAMES`) adds `` Filter <name> removed the last candidate.``;
    any other is left out."""
    action = _ACTIONS.get(action_id or "")
    detail = _DETAILS.get(detail_id or "", Detail.UNKNOWN_ERROR.text)
    text = f"{action}:{detail}"
    if filter_name in FILTER_NAMES:
        text += f" Filter {filter_name} removed the last candidate."
    return text


def record_message(
    session: AsyncSession,
    *,
    project_id: str,
    action: Field,
    detail: Field = Detail.UNKNOWN_ERROR,
    resource_uuid: str | None = None,
    resource_type: str = Resource.VOLUME,
    request_id: str | None = None,
    level: str = "ERROR",
    now: dt.datetime | None = None,
    filter_name: str | None = None,
) -> Message:
    """Adds a user message to ``session`` (committed with the caller's transaction);
    ``filter_name``: the scheduler filter that removed the last candidate, if one did (kept
    only if it is one of :data:`FILTER_NAMES`)."""
    created = now or utcnow()
    message = Message(
        project_id=project_id,
        request_id=request_id,
        resource_type=resource_type,
        resource_uuid=resource_uuid,
        message_level=level,
        event_id=event_id(resource_type, action, detail),
        action_id=action.id,
        detail_id=detail.id,
        filter_name=filter_name if filter_name in FILTER_NAMES else None,
        created_at=created,
        expires_at=created + dt.timedelta(seconds=MESSAGE_TTL),
    )
    session.add(message)
    return message
