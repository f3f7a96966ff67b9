"""64 concurrent creates of a fresh project against a quota of 10 volumes, on PostgreSQL
through the REST gateway (issue 13): the project has no usage rows yet, so every create races
to insert them; exactly 10 are accepted, the other 54 get Cinder's 413, and the usage is exact
once the 10 are available."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import db_rows, headers, wait_for_status

CREATES = 64
LIMIT = 10
OVER_LIMIT = {
    "overLimit": {
        "code": 413,
        "message": "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for "
        "quota 'volumes'.",
        "retryAfter": "0",
    }
}


@pytest.fixture(scope="module")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base: Path = tmp_path_factory.mktemp("pg-quota")
    running = make_cluster(base, quotas={"volumes": LIMIT}, database="postgresql")
    running.start()
    yield running
    running.stop()


async def burst(cluster: Cluster, project: str) -> list[httpx.Response]:
    url = f"{cluster.rest_url}/v3/{project}/volumes"
    limits = httpx.Limits(max_connections=CREATES)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(url, headers=headers(project), json={"volume": {"size": 1}})
                    for _ in range(CREATES)
                )
            )
        )


def test_64_first_creates_against_quota_10(pg_cluster: Cluster) -> None:
    assert pg_cluster.database_url.startswith("postgresql+asyncpg://")
    project = uuid.uuid4().hex
    assert db_rows(pg_cluster, "select 1 from quota_usages where project_id = ?", project) == []
    started = time.monotonic()
    answers = asyncio.run(burst(pg_cluster, project))
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in answers]
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    print(f"\n{CREATES} concurrent first creates on PostgreSQL: {elapsed:.2f} s, {counts}")
    assert sorted(set(statuses)) == [202, 413], statuses
    assert statuses.count(202) == LIMIT
    assert statuses.count(413) == CREATES - LIMIT
    for answer in answers:
        if answer.status_code == 413:
            assert answer.json() == OVER_LIMIT
    with httpx.Client() as client:
        for answer in answers:
            if answer.status_code == 202:
                volume_id = answer.json()["volume"]["id"]
                url = f"{pg_cluster.rest_url}/v3/{project}/volumes/{volume_id}"
                wait_for_status(client, url, headers(project), "available", timeout=60)
        shown = client.get(
            f"{pg_cluster.rest_url}/v3/{project}/os-quota-sets/{project}?usage=True",
            headers=headers(project),
        )
    assert shown.status_code == 200, shown.text
    assert shown.json()["quota_set"]["volumes"] == {"limit": LIMIT, "in_use": LIMIT, "reserved": 0}
    usage = dict(
        (resource, (in_use, reserved))
        for resource, in_use, reserved in db_rows(
            pg_cluster,
            "select resource, in_use, reserved from quota_usages where project_id = ?",
            project,
        )
    )
    assert usage["volumes"] == (LIMIT, 0)
    assert usage["gigabytes"] == (LIMIT, 0)
    assert db_rows(pg_cluster, "select count(*) from volumes where project_id = ?", project) == [
        (LIMIT,)
    ]
    assert db_rows(
        pg_cluster, "select count(*) from reservations where project_id = ?", project
    ) == [(0,)]
