"""The Scheduler gRPC service: validate, translate, hand over. No scheduling logic here."""

from __future__ import annotations

import logging

import grpc

from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.messages import pool_view_to_pb, schedule_request_from_pb
from services.scheduler.scheduling import Scheduler

__all__ = ["SchedulerServicer"]

log = logging.getLogger(__name__)


def _invalid(request: scheduler_pb2.ScheduleVolumeRequest) -> str | None:
    """Why the request cannot be scheduled at all, if it cannot."""
    spec = request.spec
    if not spec.volume_id:
        return "spec.volume_id is required"
    if not spec.project_id:
        return "spec.project_id is required"
    if spec.size_gb <= 0:
        return f"spec.size_gb must be a positive integer, got {spec.size_gb}"
    return None


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    async def CreateVolume(
        self,
        request: scheduler_pb2.ScheduleVolumeRequest,
        context: grpc.aio.ServicerContext[
            scheduler_pb2.ScheduleVolumeRequest, scheduler_pb2.ScheduleVolumeResponse
        ],
    ) -> scheduler_pb2.ScheduleVolumeResponse:
        if reason := _invalid(request):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, reason)
        self._scheduler.submit(schedule_request_from_pb(request))
        return scheduler_pb2.ScheduleVolumeResponse()

    async def GetPools(
        self,
        request: scheduler_pb2.GetPoolsRequest,
        context: grpc.aio.ServicerContext[
            scheduler_pb2.GetPoolsRequest, scheduler_pb2.GetPoolsResponse
        ],
    ) -> scheduler_pb2.GetPoolsResponse:
        """The pools of the backends that are up (watched, and reported within
        ``service_down_time``), as last reported."""
        views = self._scheduler.states.pool_views()
        return scheduler_pb2.GetPoolsResponse(pools=[pool_view_to_pb(v) for v in views])
