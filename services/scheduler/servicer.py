"""The Scheduler gRPC service: validate, translate, hand over. No scheduling logic here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.messages import (
    backend_report_from_pb,
    pool_view_to_pb,
    schedule_request_from_pb,
)
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

    async def ReportCapabilities(
        self,
        request_iterator: AsyncIterator[scheduler_pb2.CapabilityReport],
        context: grpc.aio.ServicerContext[
            scheduler_pb2.CapabilityReport, scheduler_pb2.ReportCapabilitiesResponse
        ],
    ) -> scheduler_pb2.ReportCapabilitiesResponse:
        """Keeps the stream's backends until the stream ends (or breaks)."""
        stream = object()
        backends: set[str] = set()
        states = self._scheduler.states
        try:
            async for report in request_iterator:
                if not report.backend:
                    continue
                backends.add(report.backend)
                states.update(backend_report_from_pb(report), stream)
        finally:
            for backend in backends:
                states.remove(backend, stream)
            log.info("capability stream of %s ended", ", ".join(sorted(backends)) or "-")
        return scheduler_pb2.ReportCapabilitiesResponse()

    async def GetPools(
        self,
        request: scheduler_pb2.GetPoolsRequest,
        context: grpc.aio.ServicerContext[
            scheduler_pb2.GetPoolsRequest, scheduler_pb2.GetPoolsResponse
        ],
    ) -> scheduler_pb2.GetPoolsResponse:
        """The pools of the backends whose capability streams are open, as last reported."""
        views = self._scheduler.states.pool_views()
        return scheduler_pb2.GetPoolsResponse(pools=[pool_view_to_pb(v) for v in views])
