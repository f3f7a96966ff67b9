"""One precedence for a project's limits, on a real SQLite database: its own row, else the
``default`` quota class's, else the configured default (``cindermesh.db.quota.limits_for``),
for reservations and the quota APIs alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cindermesh.db import quota
from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import Quota, QuotaClass, VolumeType
from cindermesh.errors import QuotaExceeded
from cindermesh.settings import QuotaSettings, Settings
from services.api.edge.auth import ADMIN_ROLES, Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.quotas.quota_sets import QuotaSets

CONFIGURED = QuotaSettings(volumes=10, gigabytes=100)
ADMIN = RequestContext(
    caller=Caller(user_id="admin", project_id="admin-project", roles=ADMIN_ROLES),
    version=Microversion(3, 0),
    base_url="http://gw",
    project_in_url=True,
)


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    async with database.session() as session:
        session.add(VolumeType(name="fast"))
        session.add(QuotaClass(class_name="default", resource="volumes", hard_limit=1))
        session.add(QuotaClass(class_name="default", resource="gigabytes_fast", hard_limit=5))
        session.add(QuotaClass(class_name="gold", resource="volumes", hard_limit=99))
        session.add(Quota(project_id="own", resource="volumes", hard_limit=3))
    yield database
    await database.close()


async def test_limits_for_takes_the_project_then_the_default_class_then_the_config(
    db: Database,
) -> None:
    async with db.read() as session:
        plain = await quota.limits_for(session, "plain", CONFIGURED)
        own = await quota.limits_for(session, "own", CONFIGURED)
    assert (plain["volumes"], plain["gigabytes"], plain["gigabytes_fast"]) == (1, 100, 5)
    assert (own["volumes"], own["gigabytes"], own["gigabytes_fast"]) == (3, 100, 5)


async def test_names_limit_the_answer_and_default_the_rest_to_unlimited(db: Database) -> None:
    async with db.read() as session:
        limits = await quota.limits_for(session, "plain", CONFIGURED, ["volumes", "volumes_fast"])
        gold = await quota.class_limits(session, "gold", CONFIGURED, ["volumes", "gigabytes"])
    assert limits == {"volumes": 1, "volumes_fast": -1}
    assert gold == {"volumes": 99, "gigabytes": 100}


async def test_reserve_obeys_the_default_class(db: Database) -> None:
    async with db.session() as session:
        await quota.reserve(session, "plain", quota.volume_deltas(1, "fast"), CONFIGURED, False)
    with pytest.raises(QuotaExceeded) as second:
        async with db.session() as session:
            await quota.reserve(session, "plain", quota.volume_deltas(1, "fast"), CONFIGURED)
    assert second.value.message == (
        "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'."
    )
    with pytest.raises(QuotaExceeded, match="gigabytes_fast quota"):
        async with db.session() as session:
            await quota.reserve(session, "own", quota.volume_deltas(6, "fast"), CONFIGURED)


async def test_quota_show_and_reserve_agree(db: Database) -> None:
    shown = await QuotaSets(db, CONFIGURED).show(ADMIN, "plain", None)
    async with db.read() as session:
        limits = await quota.limits_for(session, "plain", CONFIGURED)
    assert {key: entry.limit for key, entry in shown.entries.items()} == {
        key: limits.get(key, quota.UNLIMITED) for key in shown.entries
    }
