"""SQLModel tables.

Times are naive UTC datetimes, as Cinder stores them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import NaiveDatetime
from sqlmodel import Field, SQLModel

__all__ = [
    "DEFAULT_VOLUME_TYPE",
    "NAMING_CONVENTION",
    "AttachStatus",
    "Group",
    "GroupSnapshot",
    "GroupSnapshotStatus",
    "GroupStatus",
    "GroupType",
    "GroupTypeSpec",
    "GroupVolumeTypeMapping",
    "QosSpecs",
    "QosSpecsItem",
    "Quota",
    "QuotaClass",
    "QuotaUsage",
    "Reservation",
    "Service",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotStatus",
    "Transfer",
    "Volume",
    "VolumeAdminMetadata",
    "VolumeAttachment",
    "VolumeCreateRequest",
    "VolumeMetadata",
    "VolumePlacement",
    "VolumeStatus",
    "VolumeType",
    "VolumeTypeEncryption",
    "VolumeTypeExtraSpec",
    "VolumeTypeProject",
    "new_id",
    "utcnow",
]

DEFAULT_VOLUME_TYPE = "__DEFAULT__"

#: Names of indexes and constraints, so that migrations name them as the models do (on every
#: engine: an unnamed constraint gets a name of the server's choosing). Indexes keep
#: SQLAlchemy's default names; set before any table is defined.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION

#: Naive UTC; without the annotation SQLModel stores datetimes as timezone-aware only.
NaiveUTC = Annotated[dt.datetime, NaiveDatetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


class VolumeStatus:
    """Cinder's volume statuses used by cindermesh."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    IN_USE = "in-use"
    RESERVED = "reserved"
    ATTACHING = "attaching"
    DETACHING = "detaching"
    EXTENDING = "extending"
    ERROR_EXTENDING = "error_extending"
    RETYPING = "retyping"
    REVERTING = "reverting"
    MAINTENANCE = "maintenance"
    AWAITING_TRANSFER = "awaiting-transfer"


class AttachStatus:
    """Cinder's ``attach_status`` of a volume."""

    DETACHED = "detached"
    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"
    RESERVED = "reserved"
    ERROR_ATTACHING = "error_attaching"
    ERROR_DETACHING = "error_detaching"


class SnapshotStatus:
    """Cinder's snapshot statuses (``fields.SnapshotStatus``)."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    BACKING_UP = "backing-up"
    RESTORING = "restoring"
    UNMANAGING = "unmanaging"


class Volume(SQLModel, table=True):
    __tablename__ = "volumes"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    project_id: str = Field(index=True, max_length=255)
    user_id: str = Field(max_length=255)
    name: str | None = Field(default=None, max_length=255, index=True)
    description: str | None = Field(default=None, max_length=255)
    size: int
    status: str = Field(default=VolumeStatus.CREATING, max_length=255, index=True)
    availability_zone: str = Field(max_length=255)
    volume_type_id: str = Field(foreign_key="volume_types.id", max_length=36)
    #: host@backend#pool once scheduled: the volume's claim on the pool's capacity
    #: (``services.scheduler.claims``), from the placement on.
    host: str | None = Field(default=None, max_length=255, index=True)
    #: The volume manager service that owns it.
    service_uuid: str | None = Field(default=None, max_length=36)
    bootable: bool = False
    multiattach: bool = False
    #: The snapshot or the volume it was created from, if any.
    snapshot_id: str | None = Field(default=None, max_length=36, index=True)
    source_volid: str | None = Field(default=None, max_length=36, index=True)
    #: The generic group it belongs to, if any.
    group_id: str | None = Field(default=None, max_length=36, index=True)
    #: Cinder's ``attach_status`` (``AttachStatus``).
    attach_status: str = Field(default="detached", max_length=255)
    #: The status before the current action (Cinder's ``previous_status``), e.g. for a
    #: revert or a retype to go back to.
    previous_status: str | None = Field(default=None, max_length=255)
    migration_status: str | None = Field(default=None, max_length=255)
    #: A migration in progress (``cindermesh.db.migrations_state``): the destination pool
    #: (host@backend#pool) and the type the volume takes when it ends there; None: none.
    migration_host: str | None = Field(default=None, max_length=255)
    migration_type_id: str | None = Field(default=None, max_length=36)
    #: The size an extend in progress grows the volume to (from the api's accept until its
    #: manager ends it), GiB; None: no extend in progress.
    extend_to_gb: int | None = None
    #: The quota reservations an action in progress holds (an extend's increase), one id a
    #: line: committed or rolled back once, by the UPDATE that ends the action.
    pending_reservations: str = Field(default="", max_length=4096)
    #: Whether the volume's quota is still counted (given back once on error or delete).
    quota_held: bool = True
    #: Why the volume went to error, for operators and the trace.
    error_reason: str | None = Field(default=None, max_length=1024)
    # The durable record of the work on the volume (see ``cindermesh.db.work``).
    #: The volume manager instance working on the volume now; None: nobody holds it.
    worker: str | None = Field(default=None, max_length=255, index=True)
    #: When the worker's claim lapses. For a placed volume no manager has claimed yet: the
    #: time by which one must have, or the volume is placed again.
    lease_expires_at: NaiveUTC | None = None
    #: Placements made and failed so far (Cinder's ``retry['num_attempts']``).
    schedule_attempts: int = 0
    #: Pools (host@backend#pool) tried and failed, one per line, oldest first.
    tried_hosts: str = Field(default="", max_length=4096)
    #: Why the last placement failed.
    last_error: str | None = Field(default=None, max_length=1024)
    #: The create's ``OS-SCH-HNT:scheduler_hints`` the scheduler uses (``same_host``,
    #: ``different_host``: volume ids; ``query``), as JSON; None: none given.
    scheduler_hints: str | None = Field(default=None, max_length=8192)
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None
    launched_at: NaiveUTC | None = None


class Snapshot(SQLModel, table=True):
    """A snapshot of a volume (Cinder's ``snapshots``). A volume with snapshots cannot be
    deleted but with ``cascade``; the snapshot's image lives on the volume's backend."""

    __tablename__ = "snapshots"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    project_id: str = Field(index=True, max_length=255)
    user_id: str = Field(max_length=255)
    volume_id: str = Field(foreign_key="volumes.id", index=True, max_length=36)
    name: str | None = Field(default=None, max_length=255, index=True)
    description: str | None = Field(default=None, max_length=255)
    status: str = Field(default=SnapshotStatus.CREATING, max_length=255, index=True)
    #: Cinder's ``progress``: ``0%`` until the driver made it, then ``100%``.
    progress: str = Field(default="0%", max_length=255)
    #: The volume's size when the snapshot was taken, GiB.
    volume_size: int
    volume_type_id: str | None = Field(default=None, max_length=36)
    #: The group snapshot it is part of, if any.
    group_snapshot_id: str | None = Field(default=None, max_length=36, index=True)
    #: Whether its quota (``snapshots``, ``gigabytes``) is still counted.
    quota_held: bool = True
    error_reason: str | None = Field(default=None, max_length=1024)
    #: The volume manager instance working on it now (as ``Volume.worker``), and until when.
    worker: str | None = Field(default=None, max_length=255, index=True)
    lease_expires_at: NaiveUTC | None = None
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None


class SnapshotMetadata(SQLModel, table=True):
    __tablename__ = "snapshot_metadata"

    snapshot_id: str = Field(
        foreign_key="snapshots.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    value: str = Field(max_length=255)


class VolumeCreateRequest(SQLModel, table=True):
    """A create accepted under a request id: a retry with the same id and project answers
    the same volume (cindermesh's idempotent create, for ``idempotency_window`` seconds)."""

    __tablename__ = "volume_create_requests"

    project_id: str = Field(primary_key=True, max_length=255)
    request_id: str = Field(primary_key=True, max_length=64)
    volume_id: str = Field(max_length=36)
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)


class VolumeMetadata(SQLModel, table=True):
    __tablename__ = "volume_metadata"

    volume_id: str = Field(
        foreign_key="volumes.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    value: str = Field(max_length=255)


class VolumeAdminMetadata(SQLModel, table=True):
    """A volume's admin metadata (Cinder's ``volume_admin_metadata``): keys the users do not
    set themselves, e.g. ``readonly`` (``os-update_readonly_flag``), shown in the volume's
    ``metadata``."""

    __tablename__ = "volume_admin_metadata"

    volume_id: str = Field(
        foreign_key="volumes.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    value: str = Field(max_length=255)


class VolumeAttachment(SQLModel, table=True):
    """One attachment of a volume to a server (Cinder's ``volume_attachment``). Its
    ``attach_status`` (``AttachStatus``: ``reserved`` -> ``attaching`` -> ``attached``, or the
    ``error_*`` ones) and the volume's ``status``/``attach_status`` change together, in one
    transaction holding the volume's row (``cindermesh.db.attachments``); a deleted attachment
    is gone (Cinder soft-deletes it)."""

    __tablename__ = "volume_attachment"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    volume_id: str = Field(foreign_key="volumes.id", index=True, max_length=36, ondelete="CASCADE")
    #: The volume's project (Cinder lists a project's attachments through the volume).
    project_id: str = Field(index=True, max_length=255)
    #: The server (Nova instance) it is for; None for an attachment to a host only.
    instance_uuid: str | None = Field(default=None, max_length=36, index=True)
    #: The connector's ``host`` (Cinder's ``attached_host``).
    attached_host: str | None = Field(default=None, max_length=255)
    #: The device on the server (the connector's ``mountpoint``; ``os-attach``'s).
    mountpoint: str | None = Field(default=None, max_length=255)
    attach_time: NaiveUTC | None = None
    detach_time: NaiveUTC | None = None
    #: ``rw``, ``ro`` or Cinder's ``null`` (not given).
    attach_mode: str | None = Field(default="null", max_length=36)
    attach_status: str = Field(default="reserved", max_length=255, index=True)
    #: The volume's host@backend#pool when it was reserved.
    volume_host: str | None = Field(default=None, max_length=255)
    #: The connector (JSON) the host gave; None until it gave one.
    connector: str | None = None
    #: What the driver answered for it (JSON, Cinder's flattened shape); None until then.
    connection_info: str | None = None
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None


class VolumePlacement(SQLModel, table=True):
    """One placement attempt of a volume: what the scheduler decided and why
    (``cindermesh.placement.PlacementAttempt`` as JSON), recorded in the transaction
    that places the volume or fails it (``cindermesh.db.placements``); the last few are kept,
    and they go with their volume."""

    __tablename__ = "volume_placements"

    id: int | None = Field(default=None, primary_key=True)
    volume_id: str = Field(foreign_key="volumes.id", index=True, max_length=36, ondelete="CASCADE")
    #: The attempt's number, 1-based (Cinder's ``retry['num_attempts']`` when it was made).
    attempt: int
    created_at: NaiveUTC = Field(default_factory=utcnow)
    #: ``decision.to_json`` of the attempt.
    decision: str


class VolumeType(SQLModel, table=True):
    __tablename__ = "volume_types"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    is_public: bool = True
    #: The QoS specs associated with the type (``qos_specs.id``), if any.
    qos_specs_id: str | None = Field(default=None, max_length=36, index=True)
    created_at: NaiveUTC = Field(default_factory=utcnow)


class VolumeTypeExtraSpec(SQLModel, table=True):
    __tablename__ = "volume_type_extra_specs"

    volume_type_id: str = Field(
        foreign_key="volume_types.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    value: str = Field(max_length=255)


class VolumeTypeProject(SQLModel, table=True):
    """A project a private volume type is shared with (Cinder's ``volume_type_projects``)."""

    __tablename__ = "volume_type_projects"

    volume_type_id: str = Field(
        foreign_key="volume_types.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    project_id: str = Field(primary_key=True, max_length=255)


class VolumeTypeEncryption(SQLModel, table=True):
    """A volume type's encryption (Cinder's ``encryption``): at most one per type."""

    __tablename__ = "volume_type_encryption"

    encryption_id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    volume_type_id: str = Field(
        foreign_key="volume_types.id", unique=True, max_length=36, ondelete="CASCADE"
    )
    provider: str = Field(max_length=255)
    control_location: str = Field(max_length=255)
    cipher: str | None = Field(default=None, max_length=255)
    key_size: int | None = None
    created_at: NaiveUTC = Field(default_factory=utcnow)
    updated_at: NaiveUTC | None = None


class QosSpecs(SQLModel, table=True):
    """Named QoS specs (Cinder's ``quality_of_service_specs`` root row) and their consumer."""

    __tablename__ = "qos_specs"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=255)
    #: ``front-end``, ``back-end`` or ``both``.
    consumer: str = Field(max_length=255)
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None


class QosSpecsItem(SQLModel, table=True):
    """One key of QoS specs (a value may be null, as Cinder stores it)."""

    __tablename__ = "qos_specs_items"

    specs_id: str = Field(
        foreign_key="qos_specs.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    value: str | None = Field(default=None, max_length=255)


class QuotaClass(SQLModel, table=True):
    """A quota class's hard limit for one resource; the ``default`` class's limits are every
    project's defaults (over the configured ones)."""

    __tablename__ = "quota_classes"

    class_name: str = Field(primary_key=True, max_length=255)
    resource: str = Field(primary_key=True, max_length=255)
    hard_limit: int


class Quota(SQLModel, table=True):
    """A project's own hard limit for one resource (absent: the configured default)."""

    __tablename__ = "quotas"

    project_id: str = Field(primary_key=True, max_length=255)
    resource: str = Field(primary_key=True, max_length=255)
    hard_limit: int


class QuotaUsage(SQLModel, table=True):
    __tablename__ = "quota_usages"

    project_id: str = Field(primary_key=True, max_length=255)
    resource: str = Field(primary_key=True, max_length=255)
    in_use: int = 0
    reserved: int = 0


class Reservation(SQLModel, table=True):
    __tablename__ = "reservations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    project_id: str = Field(index=True, max_length=255)
    resource: str = Field(max_length=255)
    delta: int
    created_at: NaiveUTC = Field(default_factory=utcnow)


class Service(SQLModel, table=True):
    """A registered volume backend (Cinder's services table, cinder-volume rows)."""

    __tablename__ = "services"

    #: host@backend
    host: str = Field(primary_key=True, max_length=255)
    uuid: str = Field(default_factory=new_id, max_length=36)
    binary: str = Field(default="cindermesh-volume", max_length=255)
    #: gRPC address of its VolumeManager.
    address: str = Field(max_length=255)
    availability_zone: str = Field(max_length=255)
    #: Cinder's ``os-services`` state: an operator disabled it (with an optional reason), or
    #: froze it (``freeze``/``thaw``; a frozen service is also disabled, reason ``frozen``).
    disabled: bool = False
    disabled_reason: str | None = Field(default=None, max_length=255)
    frozen: bool = False
    created_at: NaiveUTC = Field(default_factory=utcnow)
    updated_at: NaiveUTC = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """A user message (Cinder's ``messages``): what went wrong with a user's asynchronous
    request, in Cinder's predefined words (``cindermesh.db.messages``)."""

    __tablename__ = "messages"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    project_id: str = Field(index=True, max_length=255)
    request_id: str | None = Field(default=None, max_length=255)
    #: ``VOLUME``, ``VOLUME_SNAPSHOT``, ``VOLUME_BACKUP``.
    resource_type: str | None = Field(default=None, max_length=36)
    resource_uuid: str | None = Field(default=None, max_length=255, index=True)
    #: ``ERROR``, ``WARNING``, ``INFO``.
    message_level: str = Field(max_length=255)
    #: ``VOLUME_<resource type>_<action id>_<detail id>``.
    event_id: str = Field(max_length=255)
    action_id: str | None = Field(default=None, max_length=10)
    detail_id: str | None = Field(default=None, max_length=10)
    #: The filter that removed the last candidate of a create no backend could take (a
    #: scheduler filter's name, ``cindermesh.db.messages.FILTER_NAMES``), named in the text.
    filter_name: str | None = Field(default=None, max_length=255)
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    #: Cinder's ``expires_at`` (shown as ``guaranteed_until``).
    expires_at: NaiveUTC | None = None
    #: Deleted by its user: kept (as Cinder's soft delete), never shown.
    deleted: bool = False


class Transfer(SQLModel, table=True):
    """A volume offered to another project (Cinder's ``transfers``): the volume waits
    ``awaiting-transfer`` until a project accepts it with the key shown once at its creation
    (only its salted hash is stored), or the transfer is deleted. An accepted or deleted
    transfer's row goes (Cinder keeps it soft-deleted, and never shows it)."""

    __tablename__ = "transfers"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    volume_id: str = Field(index=True, max_length=36)
    display_name: str | None = Field(default=None, max_length=255)
    #: Cinder's ``salt`` and ``crypt_hash``: HMAC-SHA1 of the auth key keyed by the salt.
    salt: str = Field(max_length=255)
    crypt_hash: str = Field(max_length=255)
    #: Whether the volume's snapshots stay with the donor (3.55).
    no_snapshots: bool = False
    #: The volume's project, which sees the transfer.
    source_project_id: str = Field(index=True, max_length=255)
    #: Cinder's history fields (3.57): an open transfer is never accepted yet.
    destination_project_id: str | None = Field(default=None, max_length=255)
    accepted: bool = False
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None


class GroupStatus:
    """Cinder's generic group statuses (``fields.GroupStatus``)."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    UPDATING = "updating"
    IN_USE = "in-use"


class GroupSnapshotStatus:
    """Cinder's group snapshot statuses (``fields.GroupSnapshotStatus``)."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"


class GroupType(SQLModel, table=True):
    """A generic group type (Cinder's ``group_types``), with its specs."""

    __tablename__ = "group_types"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    is_public: bool = True
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None


class GroupTypeSpec(SQLModel, table=True):
    """One group spec of a group type (Cinder's ``group_type_specs``)."""

    __tablename__ = "group_type_specs"

    group_type_id: str = Field(
        foreign_key="group_types.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    value: str | None = Field(default=None, max_length=255)


class Group(SQLModel, table=True):
    """A generic volume group (Cinder's ``groups``): volumes (``Volume.group_id``) of the
    volume types it was created with, snapshotted together."""

    __tablename__ = "groups"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    project_id: str = Field(index=True, max_length=255)
    user_id: str = Field(max_length=255)
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    status: str = Field(default=GroupStatus.CREATING, max_length=255, index=True)
    availability_zone: str = Field(max_length=255)
    group_type_id: str = Field(max_length=36, index=True)
    #: The group snapshot or the group it was created from, if any.
    group_snapshot_id: str | None = Field(default=None, max_length=36)
    source_group_id: str | None = Field(default=None, max_length=36)
    #: Whether its ``groups`` quota is still counted (given back once, on delete).
    quota_held: bool = True
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None


class GroupVolumeTypeMapping(SQLModel, table=True):
    """A volume type a group accepts (Cinder's ``group_volume_type_mapping``)."""

    __tablename__ = "group_volume_type_mapping"

    group_id: str = Field(
        foreign_key="groups.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    volume_type_id: str = Field(primary_key=True, max_length=36)
    #: Cinder lists a group's volume types in the order they were given.
    position: int = 0


class GroupSnapshot(SQLModel, table=True):
    """A snapshot of every volume of a group at once (Cinder's ``group_snapshots``): one
    ``Snapshot`` per member volume, each with ``group_snapshot_id``."""

    __tablename__ = "group_snapshots"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    project_id: str = Field(index=True, max_length=255)
    user_id: str = Field(max_length=255)
    group_id: str = Field(index=True, max_length=36)
    group_type_id: str = Field(max_length=36)
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    status: str = Field(default=GroupSnapshotStatus.CREATING, max_length=255, index=True)
    #: Whether its status is its snapshots' (``creating`` while one is, ``error`` if one
    #: failed, else ``available``: what Cinder's manager writes once they are made), until an
    #: admin resets it (``status`` is then the one shown).
    status_from_snapshots: bool = True
    created_at: NaiveUTC = Field(default_factory=utcnow, index=True)
    updated_at: NaiveUTC | None = None
