"""The call this service makes to the schedulers: the reschedule (``Scheduler.CreateVolume``).

The channel names every scheduler replica (``SchedulerSettings.grpc_target``) with gRPC's
``round_robin`` policy (:data:`CHANNEL_OPTIONS`), so that a reschedule reaches a replica that
is up. Capabilities do not go this way: the schedulers watch them (``reporter.py``)."""

from __future__ import annotations

import grpc

from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.volume.domain import CreateRequest, RetryState

__all__ = ["CHANNEL_OPTIONS", "RPC_TIMEOUT", "SchedulerClient", "to_volume_spec"]

#: Seconds a reschedule may take to be accepted.
RPC_TIMEOUT = 10.0
#: The channel's options: each call goes to the next replica that is up.
CHANNEL_OPTIONS: tuple[tuple[str, str], ...] = (("grpc.lb_policy_name", "round_robin"),)


def to_volume_spec(request: CreateRequest) -> scheduler_pb2.VolumeSpec:
    return scheduler_pb2.VolumeSpec(
        volume_id=request.volume_id,
        project_id=request.project_id,
        size_gb=request.size_gb,
        availability_zone=request.availability_zone,
        volume_type=scheduler_pb2.VolumeTypeSpec(
            id=request.volume_type.id,
            name=request.volume_type.name,
            extra_specs=dict(request.volume_type.extra_specs),
        ),
        snapshot_id=request.snapshot_id,
        source_volid=request.source_volid,
        source_backend=request.source_backend,
    )


def to_retry_info(retry: RetryState) -> scheduler_pb2.RetryInfo:
    return scheduler_pb2.RetryInfo(
        num_attempts=retry.num_attempts, hosts=list(retry.hosts), last_error=retry.last_error
    )


class SchedulerClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = scheduler_pb2_grpc.SchedulerStub(channel)

    async def reschedule(self, request: CreateRequest, retry: RetryState) -> None:
        """Hands the volume back to the scheduler; returns once the scheduler accepted it."""
        await self._stub.CreateVolume(
            scheduler_pb2.ScheduleVolumeRequest(
                spec=to_volume_spec(request), retry=to_retry_info(retry)
            ),
            timeout=RPC_TIMEOUT,
        )
