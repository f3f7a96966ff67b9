"""Cinder's transfer views (``cinder/api/views/transfers.py``): the summary, the detail and the
create answer (the detail with the auth key), with ``no_snapshots`` from 3.55 and
``source_project_id``, ``destination_project_id`` and ``accepted`` from 3.57."""

from __future__ import annotations

from cindermesh.db.models import Transfer
from cindermesh_pb.api.v1 import transfer_service_pb2 as pb
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.view_values import format_time, resource_links, text_or_null

__all__ = ["COLLECTION", "transfer_detail", "transfer_links", "transfer_summary"]

#: Cinder's view builder names every transfer link after the extension's collection.
COLLECTION = "os-volume-transfer"


def transfer_links(ctx: RequestContext, transfer_id: str) -> list[api_pb2.Link]:
    project = ctx.project_id if ctx.project_in_url else None
    return resource_links(ctx.base_url, project, COLLECTION, transfer_id)


def transfer_summary(ctx: RequestContext, transfer: Transfer) -> pb.Transfer:
    return pb.Transfer(
        id=transfer.id,
        volume_id=transfer.volume_id,
        name=text_or_null(transfer.display_name),
        links=transfer_links(ctx, transfer.id),
    )


def transfer_detail(
    ctx: RequestContext, transfer: Transfer, auth_key: str | None = None
) -> pb.Transfer:
    """The detail; with ``auth_key``, the create answer (the only one that shows it)."""
    view = transfer_summary(ctx, transfer)
    view.created_at = format_time(transfer.created_at)
    if auth_key is not None:
        view.auth_key = auth_key
    if ctx.version.at_least(55):
        view.no_snapshots = transfer.no_snapshots
    if ctx.version.at_least(57):
        view.source_project_id = transfer.source_project_id
        view.destination_project_id.CopyFrom(text_or_null(transfer.destination_project_id))
        view.accepted = transfer.accepted
    return view
