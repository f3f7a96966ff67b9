"""A volume made from a snapshot or a volume is placed only on the backend holding its source."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cindermesh.db import sources
from cindermesh.db.engine import Database
from cindermesh.db.models import Snapshot, VolumeStatus
from services.scheduler import volume_rows
from services.scheduler.filters import (
    DEFAULT_FILTERS,
    SOURCE_BACKEND_FILTER,
    FilterRequest,
    filters_for,
    source_backend_check,
)
from services.scheduler.spec import ScheduleRequest

from .conftest import add_volume, ago, get_volume, update_row
from .factories import pool
from .fakes import A, B, FakeManagers, make_scheduler, request


@pytest.fixture
def managers() -> FakeManagers:
    return FakeManagers()


def pinned(volume_id: str, backend: str, **changes: str) -> ScheduleRequest:
    base = request(volume_id)
    spec = replace(base.spec, source_backend=backend, **changes)
    return replace(base, spec=spec)


@pytest.mark.parametrize(
    ("source_backend", "passes"),
    [
        ("", True),
        ("node1@file-1", True),
        ("node1@file-1#pool1", True),
        ("node2@file-2", False),
        ("node1@file-1#other", False),
        ("node1@file", False),
    ],
)
def test_source_backend_filter(source_backend: str, passes: bool) -> None:
    request = FilterRequest(volume_id="v1", size_gb=1, source_backend=source_backend)
    assert (source_backend_check(pool(), request) is None) is passes


def test_the_filter_runs_first_and_only_for_a_source() -> None:
    raw = FilterRequest(volume_id="v1", size_gb=1)
    cloned = FilterRequest(volume_id="v1", size_gb=1, source_backend="node2@file-2")
    assert filters_for(raw, DEFAULT_FILTERS) == DEFAULT_FILTERS
    assert filters_for(cloned, DEFAULT_FILTERS) == (SOURCE_BACKEND_FILTER, *DEFAULT_FILTERS)


async def test_a_clone_goes_to_its_sources_backend(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await add_volume(db, "v2")
    await scheduler.schedule(request("v1"))
    assert [s.host for s in managers.sent] == [A]  # the emptier pool wins a raw create
    await scheduler.schedule(pinned("v2", "node2@file-2", source_volid="src"))
    assert [s.host for s in managers.sent] == [A, B]
    assert managers.sent[1].spec.source_backend == "node2@file-2"
    assert managers.sent[1].spec.source_volid == "src"
    assert (await get_volume(db, "v2")).host == B


async def test_a_source_backend_that_cannot_take_it_is_no_valid_backend(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await scheduler.schedule(pinned("v1", "node3@gone", snapshot_id="s1"))
    assert managers.sent == []
    row = await get_volume(db, "v1")
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason == "No valid backend was found. No weighed backends available"


async def test_the_sweep_pins_a_volume_to_its_sources_backend(db: Database) -> None:
    await add_volume(db, "src")
    await update_row(db, "src", status=VolumeStatus.AVAILABLE, host=B)
    await add_volume(db, "clone")
    await update_row(db, "clone", source_volid="src", created_at=ago(60))
    await add_volume(db, "snapped")
    async with db.session() as session:
        session.add(
            Snapshot(id="s1", project_id="p1", user_id="u1", volume_id="src", volume_size=10)
        )
    await update_row(db, "snapped", snapshot_id="s1", created_at=ago(60))
    waiting = {r.spec.volume_id: r.spec for r in await volume_rows.unplaced(db, ago(30))}
    assert waiting["clone"].source_backend == "node2@file-2"
    assert waiting["clone"].source_volid == "src"
    assert waiting["snapped"].source_backend == "node2@file-2"
    assert waiting["snapped"].snapshot_id == "s1"
    async with db.read() as session:
        assert await sources.source_backend(session, None, None) == ""
