"""Cinder's default policies (``cinder/policies/``, secure RBAC as ``enforce_new_defaults``
has them) for the APIs cindermesh serves: one row per rule, named and checked as Cinder does.

Personas: a project *reader* reads its project, a project *member* also creates, updates and
deletes in it, the *admin* role is the cloud's admin (``rule:admin_api``). Cinder checks the
project rules against the resource's project (``project_id:%(project_id)s``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADMIN_API", "DEFAULT_RULES", "PROJECT_MEMBER", "PROJECT_READER", "RuleDefault"]


@dataclass(frozen=True)
class RuleDefault:
    name: str
    check_str: str
    #: What it guards (Cinder's ``operations``), for the reader of this table.
    guards: str = ""


ADMIN_API = "rule:admin_api"
PROJECT_READER = "rule:xena_system_admin_or_project_reader"
PROJECT_MEMBER = "rule:xena_system_admin_or_project_member"

_BASE = (
    RuleDefault("context_is_admin", "role:admin", "who is an admin (the is_admin:True check)"),
    RuleDefault(
        "admin_api", "is_admin:True or (role:admin and is_admin_project:True)", "admin APIs"
    ),
    RuleDefault(
        "admin_or_owner",
        "is_admin:True or (role:admin and is_admin_project:True) or project_id:%(project_id)s",
        "legacy non-admin rule",
    ),
    RuleDefault(
        "system_or_domain_or_project_admin",
        "(role:admin and system_scope:all) or (role:admin and domain_id:%(domain_id)s) "
        "or (role:admin and project_id:%(project_id)s)",
        "legacy admin-of-something rule",
    ),
    RuleDefault(
        "xena_system_admin_or_project_reader",
        "(role:admin) or (role:reader and project_id:%(project_id)s)",
        "admins, and the project's readers",
    ),
    RuleDefault(
        "xena_system_admin_or_project_member",
        "(role:admin) or (role:member and project_id:%(project_id)s)",
        "admins, and the project's members",
    ),
)

_VOLUMES = (
    RuleDefault("volume:create", PROJECT_MEMBER, "POST /volumes"),
    RuleDefault("volume:create_from_image", PROJECT_MEMBER, "POST /volumes (imageRef)"),
    RuleDefault("volume:multiattach", PROJECT_MEMBER, "POST /volumes (multiattach type)"),
    RuleDefault("volume:get", PROJECT_READER, "GET /volumes/{id}"),
    RuleDefault("volume:get_all", PROJECT_READER, "GET /volumes, /volumes/detail, summary"),
    RuleDefault("volume:update", PROJECT_MEMBER, "PUT /volumes/{id}"),
    RuleDefault("volume:delete", PROJECT_MEMBER, "DELETE /volumes/{id}"),
    RuleDefault("volume:force_delete", ADMIN_API, "DELETE /volumes/{id}?force=true"),
    RuleDefault(
        "volume_extension:volume_host_attribute", ADMIN_API, "os-vol-host-attr:host in views"
    ),
    RuleDefault(
        "volume_extension:volume_tenant_attribute",
        PROJECT_READER,
        "os-vol-tenant-attr:tenant_id in views",
    ),
    RuleDefault(
        "volume_extension:volume_mig_status_attribute",
        ADMIN_API,
        "os-vol-mig-status-attr:* in views",
    ),
    RuleDefault("volume:get_volume_metadata", PROJECT_READER, "GET /volumes/{id}/metadata[/key]"),
    RuleDefault("volume:create_volume_metadata", PROJECT_MEMBER, "POST /volumes/{id}/metadata"),
    RuleDefault(
        "volume:update_volume_metadata", PROJECT_MEMBER, "PUT /volumes/{id}/metadata[/key]"
    ),
    RuleDefault(
        "volume:delete_volume_metadata", PROJECT_MEMBER, "DELETE /volumes/{id}/metadata/key"
    ),
    # A cindermesh extension (docs/placement.md): the owner reads its volume's placement.
    RuleDefault(
        "volume_extension:volume_placement:get",
        PROJECT_READER,
        "GET /volumes/{id}/placement (cindermesh)",
    ),
)

_TYPES = (
    RuleDefault("volume_extension:type_create", ADMIN_API, "POST /types"),
    RuleDefault("volume_extension:type_update", ADMIN_API, "PUT /types/{id}"),
    RuleDefault("volume_extension:type_delete", ADMIN_API, "DELETE /types/{id}"),
    RuleDefault("volume_extension:type_get", PROJECT_READER, "GET /types/{id}, /types/default"),
    RuleDefault("volume_extension:type_get_all", PROJECT_READER, "GET /types"),
    RuleDefault(
        "volume_extension:access_types_extra_specs", PROJECT_READER, "extra_specs in type views"
    ),
    RuleDefault(
        "volume_extension:access_types_qos_specs_id", ADMIN_API, "qos_specs_id in type views"
    ),
    RuleDefault(
        "volume_extension:types_extra_specs:index", PROJECT_READER, "GET /types/{id}/extra_specs"
    ),
    RuleDefault(
        "volume_extension:types_extra_specs:show",
        PROJECT_READER,
        "GET /types/{id}/extra_specs/{key}",
    ),
    RuleDefault(
        "volume_extension:types_extra_specs:read_sensitive",
        ADMIN_API,
        "extra specs other than the user-visible ones",
    ),
    RuleDefault(
        "volume_extension:types_extra_specs:create", ADMIN_API, "POST /types/{id}/extra_specs"
    ),
    RuleDefault(
        "volume_extension:types_extra_specs:update",
        ADMIN_API,
        "PUT /types/{id}/extra_specs/{key}",
    ),
    RuleDefault(
        "volume_extension:types_extra_specs:delete",
        ADMIN_API,
        "DELETE /types/{id}/extra_specs/{key}",
    ),
    RuleDefault(
        "volume_extension:volume_type_access",
        PROJECT_MEMBER,
        "os-volume-type-access:is_public in type views",
    ),
    RuleDefault(
        "volume_extension:volume_type_access:addProjectAccess",
        ADMIN_API,
        "POST /types/{id}/action (addProjectAccess)",
    ),
    RuleDefault(
        "volume_extension:volume_type_access:removeProjectAccess",
        ADMIN_API,
        "POST /types/{id}/action (removeProjectAccess)",
    ),
    RuleDefault(
        "volume_extension:volume_type_access:get_all_for_type",
        ADMIN_API,
        "GET /types/{id}/os-volume-type-access",
    ),
    RuleDefault(
        "volume_extension:volume_type_encryption", ADMIN_API, "legacy: every encryption rule"
    ),
    RuleDefault(
        "volume_extension:volume_type_encryption:create",
        ADMIN_API,
        "POST /types/{id}/encryption",
    ),
    RuleDefault(
        "volume_extension:volume_type_encryption:get",
        ADMIN_API,
        "GET /types/{id}/encryption[/key]",
    ),
    RuleDefault(
        "volume_extension:volume_type_encryption:update",
        ADMIN_API,
        "PUT /types/{id}/encryption/{encryption_id}",
    ),
    RuleDefault(
        "volume_extension:volume_type_encryption:delete",
        ADMIN_API,
        "DELETE /types/{id}/encryption/{encryption_id}",
    ),
)

_QOS_SPECS = (
    RuleDefault(
        "volume_extension:qos_specs_manage:get_all",
        ADMIN_API,
        "GET /qos-specs, /qos-specs/{id}/associations",
    ),
    RuleDefault("volume_extension:qos_specs_manage:get", ADMIN_API, "GET /qos-specs/{id}"),
    RuleDefault("volume_extension:qos_specs_manage:create", ADMIN_API, "POST /qos-specs"),
    RuleDefault(
        "volume_extension:qos_specs_manage:update",
        ADMIN_API,
        "PUT /qos-specs/{id}, associate, disassociate[_all]",
    ),
    RuleDefault(
        "volume_extension:qos_specs_manage:delete",
        ADMIN_API,
        "DELETE /qos-specs/{id}, PUT /qos-specs/{id}/delete_keys",
    ),
)

_QUOTAS = (
    RuleDefault(
        "volume_extension:quotas:show", PROJECT_READER, "GET /os-quota-sets/{id}[/defaults]"
    ),
    RuleDefault("volume_extension:quotas:update", ADMIN_API, "PUT /os-quota-sets/{id}"),
    RuleDefault("volume_extension:quotas:delete", ADMIN_API, "DELETE /os-quota-sets/{id}"),
    RuleDefault(
        "volume_extension:quota_classes:get", ADMIN_API, "GET /os-quota-class-sets/{class}"
    ),
    RuleDefault(
        "volume_extension:quota_classes:update", ADMIN_API, "PUT /os-quota-class-sets/{class}"
    ),
    RuleDefault("limits_extension:used_limits", PROJECT_READER, "GET /limits (the *Used fields)"),
)

_ADMIN_INFO = (
    RuleDefault("volume_extension:services:index", ADMIN_API, "GET /os-services"),
    RuleDefault("volume_extension:services:update", ADMIN_API, "PUT /os-services/{action}"),
    RuleDefault("volume:freeze_host", ADMIN_API, "PUT /os-services/freeze"),
    RuleDefault("volume:thaw_host", ADMIN_API, "PUT /os-services/thaw"),
    RuleDefault("volume:failover_host", ADMIN_API, "PUT /os-services/failover_host"),
    RuleDefault(
        "scheduler_extension:scheduler_stats:get_pools",
        ADMIN_API,
        "GET /scheduler-stats/get_pools",
    ),
    RuleDefault("volume_extension:hosts", ADMIN_API, "GET /os-hosts[/{host}], PUT /os-hosts"),
    RuleDefault("volume_extension:capabilities", ADMIN_API, "GET /capabilities/{host}"),
)

_MESSAGES = (
    RuleDefault("message:get_all", PROJECT_READER, "GET /messages"),
    RuleDefault("message:get", PROJECT_READER, "GET /messages/{id}"),
    RuleDefault("message:delete", PROJECT_MEMBER, "DELETE /messages/{id}"),
)

_SNAPSHOTS = (
    RuleDefault("volume:get_snapshot", PROJECT_READER, "GET /snapshots/{id}"),
    RuleDefault("volume:get_all_snapshots", PROJECT_READER, "GET /snapshots, /snapshots/detail"),
    RuleDefault(
        "volume_extension:extended_snapshot_attributes",
        PROJECT_READER,
        "os-extended-snapshot-attributes:* in snapshot views",
    ),
    RuleDefault("volume:create_snapshot", PROJECT_MEMBER, "POST /snapshots"),
    RuleDefault("volume:update_snapshot", PROJECT_MEMBER, "PUT /snapshots/{id}"),
    RuleDefault("volume:delete_snapshot", PROJECT_MEMBER, "DELETE /snapshots/{id}"),
    RuleDefault(
        "volume:get_snapshot_metadata", PROJECT_READER, "GET /snapshots/{id}/metadata[/key]"
    ),
    RuleDefault(
        "volume:update_snapshot_metadata",
        PROJECT_MEMBER,
        "POST, PUT /snapshots/{id}/metadata[/key]",
    ),
    RuleDefault(
        "volume:delete_snapshot_metadata", PROJECT_MEMBER, "DELETE /snapshots/{id}/metadata/key"
    ),
    RuleDefault(
        "volume_extension:snapshot_admin_actions:reset_status",
        ADMIN_API,
        "POST /snapshots/{id}/action (os-reset_status)",
    ),
    RuleDefault(
        "snapshot_extension:snapshot_actions:update_snapshot_status",
        PROJECT_MEMBER,
        "POST /snapshots/{id}/action (os-update_snapshot_status)",
    ),
    RuleDefault(
        "volume_extension:snapshot_admin_actions:force_delete",
        ADMIN_API,
        "POST /snapshots/{id}/action (os-force_delete)",
    ),
)

_TRANSFERS = (
    RuleDefault(
        "volume:get_all_transfers",
        PROJECT_READER,
        "GET /volume-transfers[/detail], /os-volume-transfer[/detail]",
    ),
    RuleDefault(
        "volume:create_transfer", PROJECT_MEMBER, "POST /volume-transfers, /os-volume-transfer"
    ),
    RuleDefault("volume:get_transfer", PROJECT_READER, "GET /volume-transfers/{id}"),
    RuleDefault("volume:accept_transfer", PROJECT_MEMBER, "POST /volume-transfers/{id}/accept"),
    RuleDefault("volume:delete_transfer", PROJECT_MEMBER, "DELETE /volume-transfers/{id}"),
)

_GROUPS = (
    RuleDefault("group:group_types_manage", ADMIN_API, "legacy: every group type rule"),
    RuleDefault("group:group_types:create", ADMIN_API, "POST /group_types"),
    RuleDefault("group:group_types:update", ADMIN_API, "PUT /group_types/{id}"),
    RuleDefault("group:group_types:delete", ADMIN_API, "DELETE /group_types/{id}"),
    RuleDefault("group:access_group_types_specs", ADMIN_API, "group_specs in group type views"),
    RuleDefault("group:group_types_specs", ADMIN_API, "legacy: every group spec rule"),
    RuleDefault(
        "group:group_types_specs:get", ADMIN_API, "GET /group_types/{id}/group_specs/{key}"
    ),
    RuleDefault("group:group_types_specs:get_all", ADMIN_API, "GET /group_types/{id}/group_specs"),
    RuleDefault("group:group_types_specs:create", ADMIN_API, "POST /group_types/{id}/group_specs"),
    RuleDefault(
        "group:group_types_specs:update", ADMIN_API, "PUT /group_types/{id}/group_specs/{key}"
    ),
    RuleDefault(
        "group:group_types_specs:delete", ADMIN_API, "DELETE /group_types/{id}/group_specs/{key}"
    ),
    RuleDefault("group:get_all", PROJECT_READER, "GET /groups[/detail]"),
    RuleDefault("group:create", PROJECT_MEMBER, "POST /groups, /groups/action (create-from-src)"),
    RuleDefault("group:get", PROJECT_READER, "GET /groups/{id}"),
    RuleDefault("group:update", PROJECT_MEMBER, "PUT /groups/{id}"),
    RuleDefault("group:group_project_attribute", ADMIN_API, "project_id in group views"),
    RuleDefault("group:delete", PROJECT_MEMBER, "POST /groups/{id}/action (delete)"),
    RuleDefault("group:reset_status", ADMIN_API, "POST /groups/{id}/action (reset_status)"),
    RuleDefault("group:get_all_group_snapshots", PROJECT_READER, "GET /group_snapshots[/detail]"),
    RuleDefault("group:create_group_snapshot", PROJECT_MEMBER, "POST /group_snapshots"),
    RuleDefault("group:get_group_snapshot", PROJECT_READER, "GET /group_snapshots/{id}"),
    RuleDefault("group:delete_group_snapshot", PROJECT_MEMBER, "DELETE /group_snapshots/{id}"),
    RuleDefault("group:update_group_snapshot", PROJECT_MEMBER, "PUT /group_snapshots/{id}"),
    RuleDefault(
        "group:group_snapshot_project_attribute", ADMIN_API, "project_id in group snapshot views"
    ),
    RuleDefault(
        "group:reset_group_snapshot_status",
        ADMIN_API,
        "POST /group_snapshots/{id}/action (reset_status)",
    ),
)

#: Every rule, by name. Version discovery, availability zones, extensions and the limits
#: themselves have no rule in Cinder (any authenticated caller).
_VOLUME_ACTIONS = (
    RuleDefault("volume:extend", PROJECT_MEMBER, "POST /volumes/{id}/action (os-extend)"),
    RuleDefault(
        "volume:extend_attached_volume",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-extend of an in-use volume, 3.42)",
    ),
    RuleDefault("volume:revert_to_snapshot", PROJECT_MEMBER, "POST /volumes/{id}/action (revert)"),
    RuleDefault(
        "volume_extension:volume_admin_actions:reset_status",
        ADMIN_API,
        "POST /volumes/{id}/action (os-reset_status)",
    ),
    RuleDefault("volume:retype", PROJECT_MEMBER, "POST /volumes/{id}/action (os-retype)"),
    RuleDefault(
        "volume:update_readonly_flag",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-update_readonly_flag)",
    ),
    RuleDefault(
        "volume_extension:volume_admin_actions:force_delete",
        ADMIN_API,
        "POST /volumes/{id}/action (os-force_delete)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:reserve",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-reserve)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:unreserve",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-unreserve)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:begin_detaching",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-begin_detaching)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:roll_detaching",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-roll_detaching)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:detach",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-detach)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:attach",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-attach)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:initialize_connection",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-initialize_connection)",
    ),
    RuleDefault(
        "volume_extension:volume_actions:terminate_connection",
        PROJECT_MEMBER,
        "POST /volumes/{id}/action (os-terminate_connection)",
    ),
    RuleDefault(
        "volume_extension:volume_admin_actions:force_detach",
        ADMIN_API,
        "POST /volumes/{id}/action (os-force_detach)",
    ),
)

_ATTACHMENTS = (
    RuleDefault("volume:attachment_create", PROJECT_MEMBER, "POST /attachments"),
    RuleDefault("volume:attachment_update", PROJECT_MEMBER, "PUT /attachments/{id}"),
    RuleDefault("volume:attachment_delete", PROJECT_MEMBER, "DELETE /attachments/{id}"),
    RuleDefault(
        "volume:attachment_complete",
        PROJECT_MEMBER,
        "POST /attachments/{id}/action (os-complete)",
    ),
    RuleDefault(
        "volume:multiattach_bootable_volume",
        PROJECT_MEMBER,
        "POST /attachments (a bootable multiattach volume already in use)",
    ),
)

DEFAULT_RULES: dict[str, RuleDefault] = {
    rule.name: rule
    for rule in (
        *_BASE,
        *_VOLUMES,
        *_TYPES,
        *_QOS_SPECS,
        *_QUOTAS,
        *_ADMIN_INFO,
        *_MESSAGES,
        *_VOLUME_ACTIONS,
        *_ATTACHMENTS,
        *_SNAPSHOTS,
        *_TRANSFERS,
        *_GROUPS,
    )
}
