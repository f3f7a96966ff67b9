"""Translation between the protobuf contract and the scheduler's own types, in one place."""

from __future__ import annotations

import math
from collections.abc import Mapping

from google.protobuf import struct_pb2

from cindermesh_pb.scheduler.v1 import scheduler_pb2
from cindermesh_pb.volume.v1 import volume_manager_pb2
from services.scheduler.backend_state import BackendReport, CapabilityValue, PoolReport, PoolView
from services.scheduler.capacity import cinder_capacity
from services.scheduler.spec import RetryState, ScheduleRequest, VolumeSpec, VolumeTypeSpec

__all__ = [
    "backend_report_from_pb",
    "capacity_from_pb",
    "manager_request_to_pb",
    "pool_view_to_pb",
    "schedule_request_from_pb",
]

#: Capabilities Cinder's drivers report that cindermesh's backends do not support: shown with
#: the value a Cinder driver without the feature reports.
_UNSUPPORTED_CAPABILITIES: Mapping[str, bool | None] = {
    "QoS_support": False,
    "consistencygroup_support": False,
    "replication_enabled": False,
    "group_replication_enabled": False,
    "filter_function": None,
    "goodness_function": None,
}
#: Capabilities that travel as strings in a report but that Cinder's drivers report as numbers.
_INTEGER_CAPABILITIES = ("total_volumes",)


def schedule_request_from_pb(request: scheduler_pb2.ScheduleVolumeRequest) -> ScheduleRequest:
    spec = request.spec
    volume_type = VolumeTypeSpec(
        id=spec.volume_type.id,
        name=spec.volume_type.name,
        extra_specs=dict(spec.volume_type.extra_specs),
    )
    retry = None
    if request.HasField("retry"):
        retry = RetryState(
            num_attempts=request.retry.num_attempts,
            hosts=tuple(request.retry.hosts),
            last_error=request.retry.last_error,
        )
    return ScheduleRequest(
        spec=VolumeSpec(
            volume_id=spec.volume_id,
            project_id=spec.project_id,
            size_gb=spec.size_gb,
            availability_zone=spec.availability_zone,
            volume_type=volume_type,
            snapshot_id=spec.snapshot_id,
            source_volid=spec.source_volid,
            source_backend=spec.source_backend,
        ),
        retry=retry,
    )


def capacity_from_pb(capacity: volume_manager_pb2.Capacity) -> float:
    """GiB; Cinder's ``infinite`` is ``math.inf``, ``unknown`` (or an unspecified unbounded
    value) ``math.nan``, as ``capacity.is_unbounded`` reads them; unset is 0 (Cinder's default
    for a capacity a driver leaves out)."""
    kind = capacity.WhichOneof("value")
    if kind == "gb":
        return capacity.gb
    if kind == "unbounded":
        return math.inf if capacity.unbounded == volume_manager_pb2.INFINITE else math.nan
    return 0.0


def _pool_from_pb(pool: volume_manager_pb2.PoolCapabilities) -> PoolReport:
    return PoolReport(
        pool_name=pool.pool_name,
        total_capacity_gb=capacity_from_pb(pool.total_capacity_gb),
        free_capacity_gb=capacity_from_pb(pool.free_capacity_gb),
        allocated_capacity_gb=pool.allocated_capacity_gb,
        provisioned_capacity_gb=pool.provisioned_capacity_gb,
        thin_provisioning_support=pool.thin_provisioning_support,
        thick_provisioning_support=pool.thick_provisioning_support,
        max_over_subscription_ratio=pool.max_over_subscription_ratio,
        max_over_subscription_ratio_auto=pool.max_over_subscription_ratio_auto,
        reserved_percentage=pool.reserved_percentage,
        extra=dict(pool.extra),
    )


def backend_report_from_pb(
    report: volume_manager_pb2.CapabilityReport, address: str
) -> BackendReport:
    """A report received from the VolumeManager at ``address``."""
    return BackendReport(
        backend=report.backend,
        volume_backend_name=report.volume_backend_name,
        availability_zone=report.availability_zone,
        address=address,
        vendor_name=report.vendor_name,
        driver_version=report.driver_version,
        storage_protocol=report.storage_protocol,
        pools=tuple(_pool_from_pb(p) for p in report.pools),
        incarnation=report.manager_incarnation,
        sequence=report.sequence,
    )


def manager_request_to_pb(
    spec: VolumeSpec, host: str, retry: RetryState
) -> volume_manager_pb2.ManagerCreateVolumeRequest:
    return volume_manager_pb2.ManagerCreateVolumeRequest(
        spec=scheduler_pb2.VolumeSpec(
            volume_id=spec.volume_id,
            project_id=spec.project_id,
            size_gb=spec.size_gb,
            availability_zone=spec.availability_zone,
            volume_type=scheduler_pb2.VolumeTypeSpec(
                id=spec.volume_type.id,
                name=spec.volume_type.name,
                extra_specs=dict(spec.volume_type.extra_specs),
            ),
            snapshot_id=spec.snapshot_id,
            source_volid=spec.source_volid,
            source_backend=spec.source_backend,
        ),
        host=host,
        retry=scheduler_pb2.RetryInfo(
            num_attempts=retry.num_attempts, hosts=list(retry.hosts), last_error=retry.last_error
        ),
    )


def _capability_value(value: CapabilityValue | None) -> CapabilityValue | None:
    """A JSON value as Cinder shows it: an unbounded capacity is ``infinite``/``unknown``."""
    if isinstance(value, float):
        return cinder_capacity(value)
    return value


def pool_view_to_pb(view: PoolView) -> scheduler_pb2.PoolInfo:
    """One pool of ``get_pools``, its capabilities keyed as Cinder's drivers report them."""
    capabilities: dict[str, CapabilityValue | None] = dict(_UNSUPPORTED_CAPABILITIES)
    capabilities.update(view.capabilities)
    if "provisioned_capacity_gb" not in capabilities:
        # What the scheduler assumes when a backend does not report it.
        capabilities["provisioned_capacity_gb"] = capabilities.get("allocated_capacity_gb", 0)
    for key in _INTEGER_CAPABILITIES:
        value = capabilities.get(key)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            capabilities[key] = int(value)
    struct = struct_pb2.Struct()
    struct.update({k: _capability_value(v) for k, v in capabilities.items()})
    return scheduler_pb2.PoolInfo(name=view.name, capabilities=struct)
