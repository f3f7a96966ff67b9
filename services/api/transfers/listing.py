"""Listing transfers as Cinder's two controllers do, through the shared listing
(``services.api.volumes.listing``): the caller's project's open transfers (every project's
for an admin with ``all_tenants``), filtered on the transfer's own fields. On
``volume-transfers`` from 3.59 the list is paginated and sorted as the others (``limit``,
``marker``, ``offset``, ``sort``; newest first by default); otherwise it is in creation order,
cut by ``limit`` and ``offset`` only (Cinder's ``common.limited``)."""

from __future__ import annotations

from cindermesh.db.models import Transfer
from cindermesh_pb.api.v1 import transfer_service_pb2 as pb
from services.api.edge.request_context import RequestContext
from services.api.schema import is_true, validate_integer
from services.api.volumes.listing import ListQuery, ListTable, parse_limit, parse_sort

__all__ = ["TRANSFERS", "parse_transfer_query"]

_COLUMNS = {
    "id": Transfer.id,
    "name": Transfer.display_name,
    "display_name": Transfer.display_name,
    "volume_id": Transfer.volume_id,
    "created_at": Transfer.created_at,
    "updated_at": Transfer.updated_at,
    "source_project_id": Transfer.source_project_id,
    "destination_project_id": Transfer.destination_project_id,
    # A transfer is its volume's project's, which is the donor's while it is open.
    "project_id": Transfer.source_project_id,
}
TRANSFERS = ListTable(
    model=Transfer,
    columns=_COLUMNS,
    metadata_owner=None,
    metadata_key=None,
    metadata_value=None,
    kind="Transfer",
)
_FILTERS = ("name", "volume_id", "id", "source_project_id", "destination_project_id")
#: The order of the lists that are not paginated (Cinder's before 3.59).
_CREATION_ORDER = (("created_at", "asc"), ("id", "asc"))


def parse_transfer_query(
    ctx: RequestContext, request: pb.ListTransfersRequest, paginated: bool
) -> ListQuery:
    """``paginated``: the v3 controller at 3.59 or later."""
    limit = parse_limit(request.limit) if request.HasField("limit") else None
    offset = validate_integer("offset", request.offset, 0) if request.HasField("offset") else 0
    filters = {name: getattr(request, name) for name in _FILTERS if request.HasField(name)}
    all_tenants = (
        ctx.caller.is_admin and request.HasField("all_tenants") and is_true(request.all_tenants)
    )
    return ListQuery(
        limit=limit,
        marker=request.marker if paginated and request.HasField("marker") else None,
        offset=offset,
        sort=parse_sort(request, _COLUMNS) if paginated else _CREATION_ORDER,
        all_tenants=all_tenants,
        filters=filters,
    )
