"""The schema every database starts with: the tables as they were when migrations began,
and Cinder's ``__DEFAULT__`` volume type (a data migration, as Cinder's own first revision).

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_tables()
    _insert_default_volume_type()


def _insert_default_volume_type() -> None:
    """Cinder's default type, the one a volume gets when none is asked for and no other is
    configured; it cannot be deleted."""
    volume_types = sa.table(
        "volume_types",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("is_public", sa.Boolean),
        sa.column("created_at", sa.DateTime),
    )
    op.bulk_insert(
        volume_types,
        [
            {
                "id": str(uuid.uuid4()),
                "name": "__DEFAULT__",
                "description": "Default Volume Type",
                "is_public": True,
                "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            }
        ],
    )


def _create_tables() -> None:
    op.create_table(
        "group_snapshots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("group_type_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("status_from_snapshots", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_snapshots")),
    )
    with op.batch_alter_table("group_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_snapshots_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_group_snapshots_group_id"), ["group_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_group_snapshots_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_group_snapshots_status"), ["status"], unique=False)

    op.create_table(
        "group_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_types")),
        sa.UniqueConstraint("name", name=op.f("uq_group_types_name")),
    )
    with op.batch_alter_table("group_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_types_created_at"), ["created_at"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("group_type_id", sa.String(length=36), nullable=False),
        sa.Column("group_snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("source_group_id", sa.String(length=36), nullable=True),
        sa.Column("quota_held", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_groups_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_groups_group_type_id"), ["group_type_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_groups_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_groups_status"), ["status"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("resource_type", sa.String(length=36), nullable=True),
        sa.Column("resource_uuid", sa.String(length=255), nullable=True),
        sa.Column("message_level", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("action_id", sa.String(length=10), nullable=True),
        sa.Column("detail_id", sa.String(length=10), nullable=True),
        sa.Column("filter_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_project_id"), ["project_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_resource_uuid"), ["resource_uuid"], unique=False
        )

    op.create_table(
        "qos_specs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("consumer", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qos_specs")),
        sa.UniqueConstraint("name", name=op.f("uq_qos_specs_name")),
    )
    with op.batch_alter_table("qos_specs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qos_specs_created_at"), ["created_at"], unique=False)

    op.create_table(
        "quota_classes",
        sa.Column("class_name", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=255), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("class_name", "resource", name=op.f("pk_quota_classes")),
    )
    op.create_table(
        "quota_usages",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=255), nullable=False),
        sa.Column("in_use", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "resource", name=op.f("pk_quota_usages")),
    )
    op.create_table(
        "quotas",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=255), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "resource", name=op.f("pk_quotas")),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=255), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reservations_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "services",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("binary", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=255), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_services")),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("salt", sa.String(length=255), nullable=False),
        sa.Column("crypt_hash", sa.String(length=255), nullable=False),
        sa.Column("no_snapshots", sa.Boolean(), nullable=False),
        sa.Column("source_project_id", sa.String(length=255), nullable=False),
        sa.Column("destination_project_id", sa.String(length=255), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfers_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_transfers_source_project_id"), ["source_project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transfers_volume_id"), ["volume_id"], unique=False)

    op.create_table(
        "volume_create_requests",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "request_id", name=op.f("pk_volume_create_requests")),
    )
    with op.batch_alter_table("volume_create_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volume_create_requests_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "volume_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("qos_specs_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_types")),
        sa.UniqueConstraint("name", name=op.f("uq_volume_types_name")),
    )
    with op.batch_alter_table("volume_types", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volume_types_qos_specs_id"), ["qos_specs_id"], unique=False
        )

    op.create_table(
        "group_type_specs",
        sa.Column("group_type_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_type_id"],
            ["group_types.id"],
            name=op.f("fk_group_type_specs_group_type_id_group_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_type_id", "key", name=op.f("pk_group_type_specs")),
    )
    op.create_table(
        "group_volume_type_mapping",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("volume_type_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_volume_type_mapping_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "volume_type_id", name=op.f("pk_group_volume_type_mapping")
        ),
    )
    op.create_table(
        "qos_specs_items",
        sa.Column("specs_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["specs_id"],
            ["qos_specs.id"],
            name=op.f("fk_qos_specs_items_specs_id_qos_specs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("specs_id", "key", name=op.f("pk_qos_specs_items")),
    )
    op.create_table(
        "volume_type_encryption",
        sa.Column("encryption_id", sa.String(length=36), nullable=False),
        sa.Column("volume_type_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=255), nullable=False),
        sa.Column("control_location", sa.String(length=255), nullable=False),
        sa.Column("cipher", sa.String(length=255), nullable=True),
        sa.Column("key_size", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_type_id"],
            ["volume_types.id"],
            name=op.f("fk_volume_type_encryption_volume_type_id_volume_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("encryption_id", name=op.f("pk_volume_type_encryption")),
        sa.UniqueConstraint(
            "volume_type_id", name=op.f("uq_volume_type_encryption_volume_type_id")
        ),
    )
    op.create_table(
        "volume_type_extra_specs",
        sa.Column("volume_type_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_type_id"],
            ["volume_types.id"],
            name=op.f("fk_volume_type_extra_specs_volume_type_id_volume_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_type_id", "key", name=op.f("pk_volume_type_extra_specs")),
    )
    op.create_table(
        "volume_type_projects",
        sa.Column("volume_type_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_type_id"],
            ["volume_types.id"],
            name=op.f("fk_volume_type_projects_volume_type_id_volume_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "volume_type_id", "project_id", name=op.f("pk_volume_type_projects")
        ),
    )
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("volume_type_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("service_uuid", sa.String(length=36), nullable=True),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("multiattach", sa.Boolean(), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("source_volid", sa.String(length=36), nullable=True),
        sa.Column("group_id", sa.String(length=36), nullable=True),
        sa.Column("attach_status", sa.String(length=255), nullable=False),
        sa.Column("previous_status", sa.String(length=255), nullable=True),
        sa.Column("migration_status", sa.String(length=255), nullable=True),
        sa.Column("migration_host", sa.String(length=255), nullable=True),
        sa.Column("migration_type_id", sa.String(length=36), nullable=True),
        sa.Column("extend_to_gb", sa.Integer(), nullable=True),
        sa.Column("pending_reservations", sa.String(length=4096), nullable=False),
        sa.Column("quota_held", sa.Boolean(), nullable=False),
        sa.Column("error_reason", sa.String(length=1024), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("schedule_attempts", sa.Integer(), nullable=False),
        sa.Column("tried_hosts", sa.String(length=4096), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("scheduler_hints", sa.String(length=8192), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("launched_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_type_id"],
            ["volume_types.id"],
            name=op.f("fk_volumes_volume_type_id_volume_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
    )
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volumes_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_host"), ["host"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_snapshot_id"), ["snapshot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_source_volid"), ["source_volid"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_worker"), ["worker"], unique=False)

    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("progress", sa.String(length=255), nullable=False),
        sa.Column("volume_size", sa.Integer(), nullable=False),
        sa.Column("volume_type_id", sa.String(length=36), nullable=True),
        sa.Column("group_snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("quota_held", sa.Boolean(), nullable=False),
        sa.Column("error_reason", sa.String(length=1024), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_snapshots_volume_id_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snapshots_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_snapshots_group_snapshot_id"), ["group_snapshot_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_snapshots_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshots_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshots_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshots_volume_id"), ["volume_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_snapshots_worker"), ["worker"], unique=False)

    op.create_table(
        "volume_admin_metadata",
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_volume_admin_metadata_volume_id_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_id", "key", name=op.f("pk_volume_admin_metadata")),
    )
    op.create_table(
        "volume_attachment",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("instance_uuid", sa.String(length=36), nullable=True),
        sa.Column("attached_host", sa.String(length=255), nullable=True),
        sa.Column("mountpoint", sa.String(length=255), nullable=True),
        sa.Column("attach_time", sa.DateTime(), nullable=True),
        sa.Column("detach_time", sa.DateTime(), nullable=True),
        sa.Column("attach_mode", sa.String(length=36), nullable=True),
        sa.Column("attach_status", sa.String(length=255), nullable=False),
        sa.Column("volume_host", sa.String(length=255), nullable=True),
        sa.Column("connector", sa.String(), nullable=True),
        sa.Column("connection_info", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_volume_attachment_volume_id_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_attachment")),
    )
    with op.batch_alter_table("volume_attachment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volume_attachment_attach_status"), ["attach_status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_volume_attachment_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_volume_attachment_instance_uuid"), ["instance_uuid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_volume_attachment_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_volume_attachment_volume_id"), ["volume_id"], unique=False
        )

    op.create_table(
        "volume_metadata",
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_volume_metadata_volume_id_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("volume_id", "key", name=op.f("pk_volume_metadata")),
    )
    op.create_table(
        "volume_placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_volume_placements_volume_id_volumes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_placements")),
    )
    with op.batch_alter_table("volume_placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volume_placements_volume_id"), ["volume_id"], unique=False
        )

    op.create_table(
        "snapshot_metadata",
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_snapshot_metadata_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "key", name=op.f("pk_snapshot_metadata")),
    )


def downgrade() -> None:
    # Children first; their indexes go with them.
    for table in (
        "snapshot_metadata",
        "volume_placements",
        "volume_metadata",
        "volume_attachment",
        "volume_admin_metadata",
        "snapshots",
        "volumes",
        "volume_type_projects",
        "volume_type_extra_specs",
        "volume_type_encryption",
        "qos_specs_items",
        "group_volume_type_mapping",
        "group_type_specs",
        "volume_types",
        "volume_create_requests",
        "transfers",
        "services",
        "reservations",
        "quotas",
        "quota_usages",
        "quota_classes",
        "qos_specs",
        "messages",
        "groups",
        "group_types",
        "group_snapshots",
    ):
        op.drop_table(table)
