"""The public VersionService: Cinder's versions document, served without a token."""

from __future__ import annotations

from cindermesh_pb.api.v1 import version_service_pb2 as pb
from cindermesh_pb.api.v1 import version_service_pb2_grpc as pb_grpc
from services.api.edge.microversion import MAX_VERSION, MIN_VERSION
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc

__all__ = ["UPDATED", "VersionServicer", "versions_document"]

#: When the newest microversion (3.71) appeared, as Cinder reports it.
UPDATED = "2023-08-31T00:00:00Z"
_DOCS = "https://docs.openstack.org/"
_MEDIA_TYPE = "application/vnd.openstack.volume+json;version=3"


def versions_document(ctx: RequestContext) -> pb.VersionsResponse:
    """The one version Cinder serves, v3.0, with its microversion range and absolute links."""
    return pb.VersionsResponse(
        versions=[
            pb.ApiVersion(
                id="v3.0",
                status="CURRENT",
                version=str(MAX_VERSION),
                min_version=str(MIN_VERSION),
                updated=UPDATED,
                links=[
                    pb.VersionLink(href=_DOCS, rel="describedby", type="text/html"),
                    pb.VersionLink(href=f"{ctx.base_url.rstrip('/')}/v3/", rel="self"),
                ],
                media_types=[pb.MediaType(base="application/json", type=_MEDIA_TYPE)],
            )
        ]
    )


class VersionServicer(pb_grpc.VersionServiceServicer):
    def __init__(self, edge: Edge) -> None:
        self._edge = edge

    @rpc(anonymous=True)
    async def ListVersions(
        self, request: pb.ListVersionsRequest, ctx: RequestContext
    ) -> pb.VersionsResponse:
        """``GET /``: 300 Multiple Choices, as Cinder."""
        return versions_document(ctx)

    @rpc(anonymous=True)
    async def GetVersionV3(
        self, request: pb.GetVersionV3Request, ctx: RequestContext
    ) -> pb.VersionsResponse:
        """``GET /v3`` and ``GET /v3/``: 200."""
        return versions_document(ctx)
