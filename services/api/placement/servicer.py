"""The public PlacementService (a cindermesh extension, at every 3.x microversion): the
scheduler's decisions for a volume, read by its owner. The volume is looked up as volume show
does (``lookups.find_volume``: another project's is Cinder's 404)."""

from __future__ import annotations

from cindermesh.db import placements
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume
from cindermesh.placement import PlacementAttempt
from cindermesh_pb.api.v1 import placement_service_pb2 as pb
from cindermesh_pb.api.v1 import placement_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.placement.views import placement_view
from services.api.volumes.lookups import find_volume

__all__ = ["PLACEMENT_RULE", "PlacementServicer"]

PLACEMENT_RULE = "volume_extension:volume_placement:get"


class PlacementServicer(pb_grpc.PlacementServiceServicer):
    def __init__(self, edge: Edge, db: Database) -> None:
        self._edge = edge
        self._db = db

    async def read(
        self, ctx: RequestContext, volume_id: str
    ) -> tuple[Volume, list[PlacementAttempt]]:
        """The volume the caller may see (else NotFound) and its kept attempts, oldest first."""
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            return volume, await placements.attempts_of(session, volume.id)

    @rpc(policy=PLACEMENT_RULE)
    async def GetVolumePlacement(
        self, request: pb.GetVolumePlacementRequest, ctx: RequestContext
    ) -> pb.GetVolumePlacementResponse:
        volume, attempts = await self.read(ctx, request.volume_id)
        return pb.GetVolumePlacementResponse(placement=placement_view(volume, attempts))
