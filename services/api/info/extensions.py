"""Cinder's extension list (``GET /v3/{project_id}/extensions``): the extensions whose APIs
cindermesh serves, with Cinder's names, aliases, descriptions and dates."""

from __future__ import annotations

from typing import NamedTuple

from cindermesh_pb.api.v1 import info_service_pb2 as info_pb2

__all__ = ["EXTENSIONS", "ExtensionInfo", "extensions_view"]


class ExtensionInfo(NamedTuple):
    name: str
    alias: str
    description: str
    updated: str


#: In the order of Cinder's ``cinder/api/contrib`` modules.
EXTENSIONS: tuple[ExtensionInfo, ...] = (
    ExtensionInfo(
        "AvailabilityZones",
        "os-availability-zone",
        "Describe Availability Zones.",
        "2013-06-27T00:00:00+00:00",
    ),
    ExtensionInfo(
        "Capabilities", "capabilities", "Capabilities support.", "2015-08-31T00:00:00+00:00"
    ),
    ExtensionInfo(
        "ExtendedServices",
        "os-extended-services",
        "Extended services support.",
        "2014-01-10T00:00:00-00:00",
    ),
    ExtensionInfo(
        "Hosts", "os-hosts", "Admin-only host administration.", "2011-06-29T00:00:00+00:00"
    ),
    ExtensionInfo(
        "Qos_specs_manage", "qos-specs", "QoS specs support.", "2013-08-02T00:00:00+00:00"
    ),
    ExtensionInfo(
        "Quotas", "os-quota-sets", "Quota management support.", "2011-08-08T00:00:00+00:00"
    ),
    ExtensionInfo(
        "Scheduler_stats",
        "scheduler-stats",
        "Scheduler stats support.",
        "2014-09-07T00:00:00+00:00",
    ),
    ExtensionInfo("Services", "os-services", "Services support.", "2012-10-28T00:00:00-00:00"),
    ExtensionInfo(
        "TypesExtraSpecs",
        "os-types-extra-specs",
        "Type extra specs support.",
        "2011-08-24T00:00:00+00:00",
    ),
    ExtensionInfo(
        "TypesManage", "os-types-manage", "Types manage support.", "2011-08-24T00:00:00+00:00"
    ),
    ExtensionInfo(
        "UsedLimits",
        "os-used-limits",
        "Provide data on limited resources that are being used.",
        "2013-10-03T00:00:00+00:00",
    ),
    ExtensionInfo(
        "VolumeHostAttribute",
        "os-vol-host-attr",
        "Expose host as an attribute of a volume.",
        "2011-11-03T00:00:00+00:00",
    ),
    ExtensionInfo(
        "VolumeMigStatusAttribute",
        "os-vol-mig-status-attr",
        "Expose migration_status as an attribute of a volume.",
        "2013-08-08T00:00:00+00:00",
    ),
    ExtensionInfo(
        "VolumeTenantAttribute",
        "os-vol-tenant-attr",
        "Expose the internal project_id as an attribute of a volume.",
        "2011-11-03T00:00:00+00:00",
    ),
    ExtensionInfo(
        "VolumeTypeAccess",
        "os-volume-type-access",
        "Volume type access support.",
        "2014-06-26T00:00:00Z",
    ),
    ExtensionInfo(
        "VolumeTypeEncryption",
        "encryption",
        "Encryption support for volume types.",
        "2013-07-01T00:00:00+00:00",
    ),
)


def extensions_view() -> info_pb2.ListExtensionsResponse:
    return info_pb2.ListExtensionsResponse(
        extensions=[
            info_pb2.Extension(
                name=e.name, alias=e.alias, description=e.description, updated=e.updated
            )
            for e in EXTENSIONS
        ]
    )
