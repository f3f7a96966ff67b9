"""QuotaSets on a real SQLite database: who may do what, what is stored, and that volume
create's quota reservation obeys what an update wrote (Cinder's 413 messages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from sqlmodel import select

from cindermesh.db import quota
from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import Quota, QuotaUsage, Reservation, VolumeType
from cindermesh.errors import Forbidden, InvalidInput, QuotaExceeded
from cindermesh.settings import QuotaSettings, Settings
from services.api.edge.auth import ADMIN_ROLES, MEMBER_ROLES, Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.quotas.quota_sets import QuotaEntry, QuotaSets
from services.api.quotas.servicer import quota_set_struct

DEFAULTS = QuotaSettings(volumes=10, gigabytes=100, snapshots=7, backups=6, backup_gigabytes=50)
TARGET = "target-project"


def _ctx(project: str = TARGET, admin: bool = False, minor: int = 0) -> RequestContext:
    user = "admin" if admin else "u1"
    return RequestContext(
        caller=Caller(
            user_id=user, project_id=project, roles=ADMIN_ROLES if admin else MEMBER_ROLES
        ),
        version=Microversion(3, minor),
        base_url="http://gw",
        project_in_url=True,
    )


ADMIN = _ctx("admin-project", admin=True)


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    async with database.session() as session:
        session.add(VolumeType(name="fast"))
        session.add(QuotaUsage(project_id=TARGET, resource="volumes", in_use=2, reserved=1))
        session.add(QuotaUsage(project_id=TARGET, resource="gigabytes", in_use=5))
        session.add(QuotaUsage(project_id=TARGET, resource="volumes___DEFAULT__", in_use=2))
    yield database
    await database.close()


@pytest.fixture
def quota_sets(db: Database) -> QuotaSets:
    return QuotaSets(db, DEFAULTS)


async def test_show_own_project_with_defaults_and_per_type_keys(quota_sets: QuotaSets) -> None:
    shown = await quota_sets.show(_ctx(), TARGET, None)
    assert not shown.with_usage
    limits = {k: e.limit for k, e in shown.entries.items()}
    assert limits == {
        "volumes": 10, "snapshots": 7, "gigabytes": 100, "backups": 6, "backup_gigabytes": 50,
        "per_volume_gigabytes": -1, "groups": 10,
        "volumes___DEFAULT__": -1, "gigabytes___DEFAULT__": -1, "snapshots___DEFAULT__": -1,
        "volumes_fast": -1, "gigabytes_fast": -1, "snapshots_fast": -1,
    }  # fmt: skip


async def test_show_with_usage(quota_sets: QuotaSets) -> None:
    shown = await quota_sets.show(_ctx(), TARGET, "True")
    assert shown.with_usage
    assert shown.entries["volumes"] == QuotaEntry(10, in_use=2, reserved=1)
    assert shown.entries["volumes___DEFAULT__"] == QuotaEntry(-1, in_use=2)
    assert shown.entries["snapshots"] == QuotaEntry(7)


async def test_show_bad_usage_flag(quota_sets: QuotaSets) -> None:
    with pytest.raises(InvalidInput, match=r"^Value 'x' for 'usage' is not a boolean\.$"):
        await quota_sets.show(_ctx(), TARGET, "x")


async def test_other_project_is_forbidden_unless_admin(quota_sets: QuotaSets) -> None:
    message = "Policy doesn't allow volume_extension:quotas:show to be performed."
    with pytest.raises(Forbidden) as raised:
        await quota_sets.show(_ctx("someone-else"), TARGET, None)
    assert raised.value.message == message
    with pytest.raises(Forbidden) as raised:
        await quota_sets.defaults(_ctx("someone-else"), TARGET)
    assert raised.value.message == message
    assert (await quota_sets.show(ADMIN, TARGET, None)).entries["volumes"].limit == 10


async def test_defaults_ignore_the_projects_own_limits(quota_sets: QuotaSets) -> None:
    await quota_sets.update(ADMIN, TARGET, {"volumes": 4}, True)
    defaults = await quota_sets.defaults(_ctx(), TARGET)
    assert defaults["volumes"] == 10 and defaults["gigabytes_fast"] == -1


async def test_update_writes_rows_and_answers_all_limits(
    quota_sets: QuotaSets, db: Database
) -> None:
    limits = await quota_sets.update(
        ADMIN, TARGET, {"volumes": 3, "gigabytes_fast": "40", "id": "ignored"}, True
    )
    assert limits["volumes"] == 3 and limits["gigabytes_fast"] == 40
    assert limits["snapshots"] == 7 and len(limits) == 13
    limits = await quota_sets.update(ADMIN, TARGET, {"volumes": 5}, True)
    assert limits["volumes"] == 5
    async with db.session() as session:
        rows = {r.resource: r.hard_limit for r in await session.exec(select(Quota))}
    assert rows == {"volumes": 5, "gigabytes_fast": 40}


async def test_update_by_non_admin_is_forbidden_after_the_schema(quota_sets: QuotaSets) -> None:
    # Cinder validates the body before the policy: a bad body is 400 even for non-admins.
    with pytest.raises(InvalidInput, match="Bad key"):
        await quota_sets.update(_ctx(), TARGET, {"foo": 1}, True)
    with pytest.raises(Forbidden) as raised:
        await quota_sets.update(_ctx(), TARGET, {"volumes": 1}, True)
    assert raised.value.message == (
        "Policy doesn't allow volume_extension:quotas:update to be performed."
    )


async def test_update_below_usage_is_refused_and_writes_nothing(
    quota_sets: QuotaSets, db: Database
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await quota_sets.update(ADMIN, TARGET, {"gigabytes": 100, "volumes": 2}, True)
    assert raised.value.message == (
        "Quota volumes limit must be equal or greater than existing resources. "
        "Current usage is 3 and the requested limit is 2."
    )
    async with db.session() as session:
        assert list(await session.exec(select(Quota))) == []


async def test_update_rejects_a_too_long_target(quota_sets: QuotaSets) -> None:
    with pytest.raises(InvalidInput) as raised:
        await quota_sets.update(ADMIN, "p" * 256, {"volumes": 1}, True)
    assert raised.value.message == (
        "Invalid input received: quota_set_name has 256 characters, more than 255."
    )


async def test_delete_goes_back_to_defaults_and_keeps_usage(
    quota_sets: QuotaSets, db: Database
) -> None:
    await quota_sets.update(ADMIN, TARGET, {"volumes": 4, "snapshots": 1}, True)
    with pytest.raises(Forbidden, match="quotas:delete"):
        await quota_sets.delete(_ctx(), TARGET)
    await quota_sets.delete(ADMIN, TARGET)
    shown = await quota_sets.show(_ctx(), TARGET, "1")
    assert shown.entries["volumes"] == QuotaEntry(10, in_use=2, reserved=1)
    assert shown.entries["snapshots"].limit == 7


async def test_limits(quota_sets: QuotaSets) -> None:
    await quota_sets.update(ADMIN, TARGET, {"volumes": 20}, True)
    found = await quota_sets.limits(_ctx(), None, None)
    assert (found.max_total_volumes, found.total_volumes_used) == (20, 2)  # in_use only
    assert (found.max_total_volume_gigabytes, found.total_gigabytes_used) == (100, 5)
    assert (found.max_total_snapshots, found.max_total_backups) == (7, 6)
    assert found.max_total_backup_gigabytes == 50 and found.total_backups_used == 0


async def test_limits_of_another_project_for_admins_from_3_39(quota_sets: QuotaSets) -> None:
    admin_339 = _ctx("admin-project", admin=True, minor=39)
    assert (await quota_sets.limits(admin_339, TARGET, None)).total_volumes_used == 2
    assert (await quota_sets.limits(admin_339, None, TARGET)).total_volumes_used == 2
    # Before 3.39, or for a non-admin, the parameter is ignored.
    assert (await quota_sets.limits(ADMIN, TARGET, None)).total_volumes_used == 0
    other = _ctx("other", minor=39)
    assert (await quota_sets.limits(other, TARGET, None)).total_volumes_used == 0


async def test_updated_limit_is_enforced_by_reserve(quota_sets: QuotaSets, db: Database) -> None:
    await quota_sets.update(ADMIN, TARGET, {"volumes": 3}, True)
    async with db.session() as session:
        with pytest.raises(QuotaExceeded) as raised:
            await quota.reserve(session, TARGET, quota.volume_deltas(1, "__DEFAULT__"), DEFAULTS)
    assert raised.value.message == (
        "VolumeLimitExceeded: Maximum number of volumes allowed (3) exceeded for quota 'volumes'."
    )


async def test_per_type_limit_is_named_in_the_message(quota_sets: QuotaSets, db: Database) -> None:
    await quota_sets.update(ADMIN, TARGET, {"volumes___DEFAULT__": 2}, True)
    async with db.session() as session:
        with pytest.raises(QuotaExceeded) as raised:
            await quota.reserve(session, TARGET, quota.volume_deltas(1, "__DEFAULT__"), DEFAULTS)
    assert raised.value.message == (
        "VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota "
        "'volumes___DEFAULT__'."
    )


async def test_when_several_are_over_the_sorted_first_decides(
    quota_sets: QuotaSets, db: Database
) -> None:
    await quota_sets.update(ADMIN, TARGET, {"volumes": 3, "gigabytes_fast": 4}, True)
    async with db.session() as session:
        with pytest.raises(QuotaExceeded) as raised:
            await quota.reserve(session, TARGET, quota.volume_deltas(5, "fast"), DEFAULTS)
    # volumes (3 used of 3) and gigabytes_fast (5 > 4) are over: 'gigabytes_fast' sorts first.
    assert raised.value.message == (
        "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
        "gigabytes_fast quota. Requested 5G, quota is 4G and 0G has been consumed."
    )
    async with db.session() as session:
        assert list(await session.exec(select(Reservation))) == []
        usage = await session.get(QuotaUsage, (TARGET, "volumes"))
        assert usage is not None and (usage.in_use, usage.reserved) == (2, 1)


def test_quota_set_struct_shapes() -> None:
    plain = MessageToDict(quota_set_struct({"volumes": 10, "gigabytes": -1}, "p1"))
    assert plain == {"id": "p1", "volumes": 10, "gigabytes": -1}
    with_usage = MessageToDict(quota_set_struct({"volumes": QuotaEntry(10, 2, 1)}, "p1"))
    assert with_usage == {"id": "p1", "volumes": {"limit": 10, "in_use": 2, "reserved": 1}}
    assert "id" not in MessageToDict(quota_set_struct({"volumes": 1}, None))
