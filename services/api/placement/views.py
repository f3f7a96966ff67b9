"""The placement view: a volume's host and status with its kept placement attempts, each as
the scheduler recorded it (``cindermesh.placement``), pool ids as ``host``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from google.protobuf import struct_pb2

from cindermesh.db.models import Volume
from cindermesh.placement import FilterOutcome, PlacementAttempt, WeighedOutcome
from cindermesh_pb.api.v1 import placement_service_pb2 as pb
from services.api.view_values import text_or_null

__all__ = ["attempt_view", "placement_view"]


def _filter_view(outcome: FilterOutcome) -> pb.PlacementFilter:
    return pb.PlacementFilter(
        name=outcome.name,
        hosts_in=outcome.hosts_in,
        passed=list(outcome.passed),
        rejected=[pb.PlacementRejection(host=h, reason=r) for h, r in outcome.rejected],
    )


def _weighed_view(outcome: WeighedOutcome) -> pb.PlacementWeighed:
    return pb.PlacementWeighed(
        host=outcome.pool, weight=outcome.weight, weights=dict(outcome.weights)
    )


def attempt_view(attempt: PlacementAttempt) -> pb.PlacementAttempt:
    request = struct_pb2.Struct()
    # JSON values only: the decision was read back from its stored JSON.
    request.update(cast("dict[str, Any]", dict(attempt.request)))
    return pb.PlacementAttempt(
        attempt=attempt.attempt,
        decided_at=attempt.decided_at.isoformat(),
        scheduler=attempt.scheduler,
        result=attempt.result,
        reason=attempt.reason,
        chosen=text_or_null(attempt.chosen),
        last_filter=text_or_null(attempt.last_filter),
        retry_hosts=list(attempt.retry_hosts),
        last_error=attempt.last_error,
        request=request,
        disabled=list(attempt.disabled),
        filters=[_filter_view(f) for f in attempt.filters],
        weighed=[_weighed_view(w) for w in attempt.weighed],
    )


def placement_view(volume: Volume, attempts: Sequence[PlacementAttempt]) -> pb.VolumePlacement:
    return pb.VolumePlacement(
        volume_id=volume.id,
        host=text_or_null(volume.host),
        status=volume.status,
        attempts=[attempt_view(a) for a in attempts],
    )
