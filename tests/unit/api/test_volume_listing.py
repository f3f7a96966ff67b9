"""Volume list queries as Cinder reads them, per microversion and role (``listing.py``)."""

from __future__ import annotations

import datetime as dt

import pytest

from cindermesh.errors import InvalidInput
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.auth import Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.volumes.listing import parse_list_query

USER = Caller("u", "p")
ADMIN = Caller("a", "q", frozenset({"admin"}))


def _query(caller: Caller = USER, minor: int = 0, **fields: str):  # type: ignore[no-untyped-def]
    ctx = RequestContext(caller, Microversion(3, minor), "http://gw", True)
    return parse_list_query(ctx, api_pb2.ListVolumesRequest(url_project_id="p", **fields))


def test_project_id_is_an_admins_filter() -> None:
    assert _query(ADMIN, all_tenants="1", project_id="x").filters == {"project_id": "x"}
    assert _query(ADMIN, all_tenants="1", project_id="x").all_tenants
    # A non-admin's: dropped before resource filters (3.33), refused from then on.
    assert "project_id" not in _query(USER, project_id="x").filters
    with pytest.raises(InvalidInput, match="Invalid filters project_id are found"):
        _query(USER, 33, project_id="x")


def test_bootable_is_strict_from_3_2() -> None:
    assert _query(bootable="false").bootable is False
    assert _query(bootable="maybe").bootable is True
    assert _query(minor=2, bootable="0").bootable is False
    with pytest.raises(InvalidInput, match="Invalid input received: 'bootable = maybe'"):
        _query(minor=2, bootable="maybe")


def test_later_filters_are_ignored_before_their_microversions() -> None:
    assert not _query(group_id="g").match_nothing
    assert _query(minor=10, group_id="g").match_nothing
    assert _query(migration_status="migrating").match_nothing
    assert _query(created_at="lt:2020-01-01T00:00:00").times == {}
    assert not _query(consumes_quota="false").match_nothing
    assert _query(minor=65, consumes_quota="false").match_nothing
    assert not _query(minor=65, consumes_quota="true").match_nothing
    with pytest.raises(InvalidInput, match=r"Value 'x' for 'use_quota' is not a boolean\."):
        _query(minor=65, consumes_quota="x")


def test_time_comparisons() -> None:
    query = _query(minor=60, created_at="gt:2020-01-01T00:00:00,lte:2021-01-01T01:00:00+01:00")
    assert query.times == {
        "created_at": [("gt", dt.datetime(2020, 1, 1)), ("lte", dt.datetime(2021, 1, 1))]
    }
    with pytest.raises(InvalidInput, match=r"^Invalid after operator$"):
        _query(minor=60, updated_at="after:2020-01-01")
    with pytest.raises(InvalidInput, match=r"^Invalid soon value$"):
        _query(minor=60, updated_at="gt:soon")
