"""The database the unit tests of the database layer run on: each such test runs twice, on
SQLite (a file in its tmp dir, as the services open it) and on a fresh database of the test
PostgreSQL (``tests.postgres``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.postgres import ENGINES, drop_database, fresh_database


@pytest.fixture(params=ENGINES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The ``database_url`` of the test's own database, on each engine in turn."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cindermesh.db'}"
        return
    url = await asyncio.to_thread(fresh_database, "unit")
    yield url
    await asyncio.to_thread(drop_database, url)
