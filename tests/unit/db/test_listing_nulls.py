"""Marker pagination over a sort key that is NULL on some rows (``name`` is optional), on each
engine: following the pages visits every row once, in one order, whichever direction; NULLs
sort as the smallest value (first ascending, last descending) on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume
from services.api.edge.auth import Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.volumes.listing import VOLUMES, ListQuery, list_page
from tests.unit.rows import update_row

from .conftest import add_volume

CTX = RequestContext(Caller("u1", "p1"), Microversion(3, 0), "http://x", True)
NAMES = {"v1": None, "v2": "b", "v3": None, "v4": "a", "v5": "c", "v6": None}


async def pages(db: Database, sort: tuple[tuple[str, str], ...], limit: int) -> list[str]:
    """Every id, following the markers page by page."""
    seen: list[str] = []
    marker: str | None = None
    while True:
        async with db.read() as session:
            query = ListQuery(limit=limit, marker=marker, sort=sort)
            rows: list[Volume] = (await list_page(session, CTX, query, VOLUMES)).rows
        if not rows:
            return seen
        seen += [row.id for row in rows]
        marker = rows[-1].id
        assert len(seen) <= len(NAMES), seen


@pytest.fixture
async def named(db: Database) -> Database:
    for volume_id, name in NAMES.items():
        await add_volume(db, volume_id)
        await update_row(db, volume_id, name=name)
    return db


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_ascending_nulls_first(named: Database, limit: int) -> None:
    sort = (("name", "asc"), ("id", "asc"))
    assert await pages(named, sort, limit) == ["v1", "v3", "v6", "v4", "v2", "v5"]


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_descending_nulls_last(named: Database, limit: int) -> None:
    sort = (("name", "desc"), ("id", "desc"))
    assert await pages(named, sort, limit) == ["v5", "v2", "v4", "v6", "v3", "v1"]


async def test_mixed_directions(named: Database) -> None:
    sort = (("name", "asc"), ("id", "desc"))
    assert await pages(named, sort, 1) == ["v6", "v3", "v1", "v4", "v2", "v5"]
