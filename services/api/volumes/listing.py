"""Listing as Cinder does: filters, sorting, limit/marker/offset pagination, count and the
``<collection>_links`` next-page link, for volumes (:data:`VOLUMES`) and any other table a
:class:`ListTable` describes (snapshots: ``services.api.snapshots.listing``)."""

from __future__ import annotations

import ast
import datetime as dt
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf import struct_pb2
from sqlalchemy import ColumnElement, and_, false, func, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from cindermesh.db.models import Volume, VolumeMetadata
from cindermesh.errors import InvalidInput, NotFound
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.schema import (
    bool_from_string,
    invalid_input,
    is_true,
    strict_bool,
    validate_integer,
)

__all__ = [
    "VOLUMES",
    "ListPage",
    "ListQuery",
    "ListTable",
    "SortRequest",
    "add_next_link",
    "list_page",
    "next_link",
    "paginate",
    "parse_limit",
    "parse_list_query",
    "parse_metadata_filter",
    "parse_sort",
]

MAX_LIMIT = 1000
_SORT_COLUMNS: dict[str, Any] = {
    "id": Volume.id,
    "name": Volume.name,
    "display_name": Volume.name,
    "status": Volume.status,
    "size": Volume.size,
    "availability_zone": Volume.availability_zone,
    "created_at": Volume.created_at,
    "updated_at": Volume.updated_at,
    "volume_type_id": Volume.volume_type_id,
    "user_id": Volume.user_id,
    "project_id": Volume.project_id,
    "bootable": Volume.bootable,
    "host": Volume.host,
}


class _Row(Protocol):
    id: str


Row = TypeVar("Row", bound=_Row)


@dataclass(frozen=True)
class ListTable(Generic[Row]):
    """What listing needs to know of a table."""

    model: type[Row]
    #: Sort keys and equality filters, by their query name.
    columns: Mapping[str, Any]
    #: The metadata table's owner-id, key and value columns.
    metadata_owner: Any
    metadata_key: Any
    metadata_value: Any
    #: The resource's name in Cinder's "<kind> <marker> could not be found.".
    kind: str


VOLUMES = ListTable(
    model=Volume,
    columns=_SORT_COLUMNS,
    metadata_owner=VolumeMetadata.volume_id,
    metadata_key=VolumeMetadata.key,
    metadata_value=VolumeMetadata.value,
    kind="Volume",
)


@dataclass(frozen=True)
class ListQuery:
    limit: int | None = None
    marker: str | None = None
    offset: int = 0
    sort: tuple[tuple[str, str], ...] = (("created_at", "desc"), ("id", "desc"))
    with_count: bool = False
    all_tenants: bool = False
    filters: dict[str, str] = field(default_factory=dict)
    bootable: bool | None = None
    metadata: dict[str, str] | None = None
    #: A metadata filter that is not a dict, or a filter no cindermesh volume can match
    #: (``migration_status``, ``group_id``, ``consumes_quota=false``): Cinder matches nothing.
    match_nothing: bool = False
    #: ``created_at`` / ``updated_at`` comparisons (3.60): column name -> [(operator, time)].
    times: dict[str, list[tuple[str, dt.datetime]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ListPage(Generic[Row]):
    rows: list[Row]
    count: int | None
    limit: int


class SortRequest(Protocol):
    """The sort parameters of a list request (a ``List*Request`` message)."""

    sort: str
    sort_key: str
    sort_dir: str

    def HasField(self, field_name: str) -> bool: ...


def parse_limit(value: str) -> int:
    """Cinder's ``_get_limit_param``."""
    try:
        limit = int(value)
    except ValueError:
        raise InvalidInput("limit param must be an integer") from None
    if limit < 0:
        raise InvalidInput("limit param must be positive")
    return limit


def parse_sort(
    request: SortRequest, columns: Mapping[str, Any] = _SORT_COLUMNS
) -> tuple[tuple[str, str], ...]:
    keys: list[str] = []
    dirs: list[str] = []
    if request.HasField("sort"):
        if request.HasField("sort_key") or request.HasField("sort_dir"):
            raise InvalidInput(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used "
                "with the 'sort' parameter."
            )
        for item in request.sort.split(","):
            key, _, direction = item.strip().partition(":")
            keys.append(key.strip())
            dirs.append(direction.strip() or "desc")
    else:
        if request.HasField("sort_key"):
            keys = [k.strip() for k in request.sort_key.split(",")]
        if request.HasField("sort_dir"):
            dirs = [d.strip() for d in request.sort_dir.split(",")]
        if len(dirs) > max(len(keys), 1):
            raise invalid_input("Sort direction array size exceeds sort key array size.")
        dirs += ["desc"] * (len(keys) - len(dirs))
        if not keys:
            keys = ["created_at"]
            dirs = dirs or ["desc"]
    for key in keys:
        if key not in columns:
            raise invalid_input("Invalid sort key")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise invalid_input("Unknown sort direction, must be 'desc' or 'asc'.")
    keys = ["name" if k == "display_name" else k for k in keys]
    pairs = list(zip(keys, dirs, strict=True))
    for tail in ("created_at", "id"):
        if tail not in keys:
            pairs.append((tail, dirs[0]))
    return tuple(pairs)


def parse_metadata_filter(value: str) -> dict[str, str] | None:
    """Cinder evaluates the filter as a literal; anything but a dict matches nothing."""
    try:
        parsed = json.loads(value)
    except ValueError:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if not isinstance(parsed, dict):
        return None
    return {str(k): str(v) for k, v in parsed.items()}


#: Cinder's time comparison operators (``common.get_time_comparison_operators``).
_TIME_OPERATORS = ("gt", "gte", "eq", "neq", "lt", "lte")


def _parse_time_filter(name: str, value: str) -> list[tuple[str, dt.datetime]]:
    """Cinder's ``_handle_time_comparison_filters``: ``op:time[,op:time]``."""
    comparisons: list[tuple[str, dt.datetime]] = []
    for unit in value.split(","):
        operator, _, time = unit.partition(":")
        if operator not in _TIME_OPERATORS:
            # Cinder's split takes the whole unit as operator when it has no colon.
            raise InvalidInput(f"Invalid {operator} operator")
        try:
            parsed = dt.datetime.fromisoformat(time)
        except ValueError:
            raise InvalidInput(f"Invalid {time} value") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        comparisons.append((operator, parsed))
    return comparisons


def _bootable(value: str, strict: bool) -> bool:
    """Cinder's ``_check_boolean_filter_value``: strict from 3.2, lenient before."""
    if strict:
        parsed = bool_from_string(value)
        if parsed is None:
            raise invalid_input(f"'bootable = {value}'")
        return parsed
    if value in ("False", "false", "FALSE"):
        return False
    return bool(value)


def parse_list_query(ctx: RequestContext, request: api_pb2.ListVolumesRequest) -> ListQuery:
    """The query as Cinder's ``_get_volumes`` reads it, for the request's microversion.

    Before 3.33 (resource filters) filters a non-admin may not use are dropped, as are the
    filters of later microversions (``group_id`` before 3.10, ``created_at``/``updated_at``
    and ``consumes_quota``); from 3.33 a non-admin's ``project_id`` is Cinder's 400.
    """
    version = ctx.version
    general = version.at_least(33)
    admin = ctx.caller.is_admin
    limit = None
    if request.HasField("limit"):
        limit = parse_limit(request.limit)
    offset = validate_integer("offset", request.offset, 0) if request.HasField("offset") else 0
    filters = {
        name: getattr(request, name)
        for name in ("name", "status", "availability_zone", "size")
        if request.HasField(name)
    }
    if request.HasField("project_id"):
        if admin:
            filters["project_id"] = request.project_id
        elif general:
            raise InvalidInput("Invalid filters project_id are found in query options.")
    match_nothing = request.HasField("metadata") and parse_metadata_filter(request.metadata) is None
    # No cindermesh volume migrates or belongs to a group: such a filter matches nothing.
    if request.HasField("migration_status"):
        match_nothing = True
    if request.HasField("group_id") and version.at_least(10):
        match_nothing = True
    times: dict[str, list[tuple[str, dt.datetime]]] = {}
    for name in ("created_at", "updated_at"):
        # Cinder drops them before 3.33 (they are 3.60's) and reads them from 3.33 on.
        if request.HasField(name) and general:
            times[name] = _parse_time_filter(name, getattr(request, name))
    # Every cindermesh volume consumes quota.
    if (
        request.HasField("consumes_quota")
        and general
        and not strict_bool("use_quota", request.consumes_quota)
    ):
        match_nothing = True
    bootable = (
        _bootable(request.bootable, strict=version.at_least(2))
        if request.HasField("bootable")
        else None
    )
    return ListQuery(
        limit=limit,
        marker=request.marker if request.HasField("marker") else None,
        offset=offset,
        sort=parse_sort(request),
        with_count=(
            version.at_least(45) and request.HasField("with_count") and is_true(request.with_count)
        ),
        all_tenants=admin and request.HasField("all_tenants") and is_true(request.all_tenants),
        filters=filters,
        bootable=bootable,
        metadata=parse_metadata_filter(request.metadata) if request.HasField("metadata") else None,
        match_nothing=match_nothing,
        times=times,
    )


def _conditions(
    ctx: RequestContext, query: ListQuery, table: ListTable[Any]
) -> list[ColumnElement[bool]]:
    columns = table.columns
    conditions: list[ColumnElement[bool]] = []
    if not query.all_tenants:
        conditions.append(col(columns["project_id"]) == ctx.project_id)
    if query.bootable is not None:
        conditions.append(col(columns["bootable"]) == query.bootable)
    for name, value in query.filters.items():
        if name == "size":
            conditions.append(col(columns["size"]) == (int(value) if value.isdigit() else -1))
        else:
            conditions.append(col(columns[name]) == value)
    if query.metadata is not None:
        for key, value in query.metadata.items():
            conditions.append(
                col(columns["id"]).in_(
                    select(table.metadata_owner).where(
                        table.metadata_key == key, table.metadata_value == value
                    )
                )
            )
    for name, comparisons in query.times.items():
        column = col(columns[name])
        conditions.append(or_(*(_compare(column, op, time) for op, time in comparisons)))
    if query.match_nothing:
        conditions.append(~true())
    return conditions


def _compare(column: Any, operator: str, time: dt.datetime) -> ColumnElement[bool]:
    comparisons = {
        "gt": column > time,
        "gte": column >= time,
        "eq": column == time,
        "neq": column != time,
        "lt": column < time,
        "lte": column <= time,
    }
    result: ColumnElement[bool] = comparisons[operator]
    return result


# NULL sorts as the smallest value of a sort key, on every engine (SQLite's own order;
# PostgreSQL's default is the largest), as Cinder's paginate_query, which compares a NULL as
# its column type's smallest default ('' or 0): first ascending, last descending. The order
# and the marker's condition both follow it, so a page never skips or repeats a NULL row.


def _ordered(column: Any, direction: str) -> Any:
    return column.desc().nulls_last() if direction == "desc" else column.asc().nulls_first()


def _equal(column: Any, value: object) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.is_(None) if value is None else column == value
    return result


def _beyond(column: Any, value: object, direction: str) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in ``column``'s order (NULL the smallest)."""
    result: ColumnElement[bool]
    if direction == "desc":
        result = false() if value is None else or_(column < value, column.is_(None))
    else:
        result = column.is_not(None) if value is None else column > value
    return result


def _after_marker(
    query: ListQuery, marker: object, columns: Mapping[str, Any]
) -> ColumnElement[bool]:
    """Rows strictly after the marker in the sort order (oslo's paginate_query)."""
    alternatives: list[ColumnElement[bool]] = []
    for index, (key, direction) in enumerate(query.sort):
        equal = [
            _equal(col(columns[k]), getattr(marker, columns[k].key)) for k, _ in query.sort[:index]
        ]
        value = getattr(marker, columns[key].key)
        alternatives.append(and_(*equal, _beyond(col(columns[key]), value, direction)))
    return or_(*alternatives)


async def list_page(
    session: AsyncSession,
    ctx: RequestContext,
    query: ListQuery,
    table: ListTable[Row],
) -> ListPage[Row]:
    """A page of ``table``'s rows (the caller's project's unless an admin asks for all)."""
    conditions = _conditions(ctx, query, table)
    model = table.model
    statement: SelectOfScalar[Row] = select(model).where(*conditions)
    count = None
    if query.with_count:
        count_statement = select(func.count()).select_from(model).where(*conditions)
        count = (await session.exec(count_statement)).one()
    if query.marker is not None:
        marker_query = select(model).where(*conditions, col(table.columns["id"]) == query.marker)
        marker = (await session.exec(marker_query)).first()
        if marker is None:
            raise NotFound(f"{table.kind} {query.marker} could not be found.")
        statement = statement.where(_after_marker(query, marker, table.columns))
    for key, direction in query.sort:
        statement = statement.order_by(_ordered(col(table.columns[key]), direction))
    limit = min(query.limit if query.limit is not None else MAX_LIMIT, MAX_LIMIT)
    statement = statement.offset(query.offset).limit(limit)
    rows = list(await session.exec(statement))
    return ListPage(rows, count, limit)


def next_link(
    ctx: RequestContext, page: ListPage[Any], original_path: str, resource: str
) -> list[dict[str, str]] | None:
    """Cinder's rule: a next link when the page is full (or the count says more remain)."""
    if not page.rows:
        return None
    item_count = page.count if page.count else len(page.rows)
    if page.limit > item_count:
        return None
    query = urllib.parse.urlsplit(original_path).query
    params = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    marker = page.rows[-1].id
    if any(k == "marker" for k, _ in params):
        params = [(k, marker if k == "marker" else v) for k, v in params]
    else:
        params.append(("marker", marker))
    prefix = f"{ctx.project_id}/" if ctx.project_in_url else ""
    href = f"{ctx.base_url}/v3/{prefix}{resource}?{urllib.parse.urlencode(params)}"
    return [{"rel": "next", "href": href}]


class PagedResponse(Protocol):
    """A list response: its ``count`` (3.45) and its ``<collection>_links``."""

    count: int


def paginate(
    response: PagedResponse,
    links: struct_pb2.ListValue,
    ctx: RequestContext,
    page: ListPage[Any],
    resource: str,
) -> None:
    """Writes the page's ``count`` (when asked for) and Cinder's next link into a list
    response; ``links``: the response's ``<collection>_links`` field."""
    if page.count is not None:
        response.count = page.count
    add_next_link(links, ctx, page, resource)


def add_next_link(
    links: struct_pb2.ListValue, ctx: RequestContext, page: ListPage[Any], resource: str
) -> None:
    """Cinder's next link into a response's ``<collection>_links`` field, if there is one
    (the field stays absent otherwise)."""
    for link in next_link(ctx, page, ctx.original_path, resource) or ():
        entry = struct_pb2.Struct()
        entry.update(link)
        links.values.add().struct_value.CopyFrom(entry)
