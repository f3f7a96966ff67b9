"""Two api and two scheduler replicas behind Envoy: kill -9 one of each in the middle of a
burst of creates, and every create the client saw accepted ends ``available``; the reads
during the kill all succeed (Envoy retries them on the other api replica)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.fleet import Fleet
from tests.e2e.helpers import headers

PROJECT = "5ca1ab1e00000000000000000000beef"
CREATES = 60
#: Creates in flight at once: enough that some are in flight on the killed api replica.
CONCURRENCY = 8
#: Creates answered before the kill.
KILL_AFTER = 20
#: Seconds for every accepted volume to leave ``creating`` (a bound on waiting, not a figure).
SETTLE_TIMEOUT = 90.0


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        backends=("file-1", "file-2"),
        schedulers=2,
        apis=2,
        # Room for every create on either backend: an error here would be a failure.
        backend_settings={b: {"total_capacity_gb": 1000} for b in ("file-1", "file-2")},
        work={"unplaced_grace": 1.0, "manager_lease": 3.0},
    )
    running.start_all()
    yield running
    running.stop_all()


@dataclass
class Burst:
    """What the client saw."""

    creates: Counter[int] = field(default_factory=Counter)
    accepted: dict[str, str] = field(default_factory=dict)  # request id -> volume id
    failed_creates: list[str] = field(default_factory=list)
    reads: Counter[int] = field(default_factory=Counter)
    failed_reads: list[str] = field(default_factory=list)
    killed: asyncio.Event = field(default_factory=asyncio.Event)


def _envoy_counters(fleet: Fleet) -> dict[str, int]:
    text = httpx.get(f"http://127.0.0.1:{fleet.ports['admin']}/stats", timeout=5).text
    wanted = (
        "cluster.api.upstream_rq_retry",
        "cluster.api.upstream_rq_retry_success",
        "cluster.api.upstream_rq_retry_overflow",
        "cluster.api.upstream_rq_retry_limit_exceeded",
        "cluster.api.upstream_cx_connect_fail",
        "cluster.api.upstream_cx_destroy_remote_with_active_rq",
        "cluster.api.health_check.failure",
        "cluster.api.outlier_detection.ejections_enforced_total",
    )
    counters: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if name in wanted:
            counters[name.removeprefix("cluster.api.")] = int(value)
    return counters


async def _create(client: httpx.AsyncClient, fleet: Fleet, burst: Burst, index: int) -> None:
    request_id = f"req-{uuid.uuid4()}"
    response = await client.post(
        f"{fleet.rest_url}/v3/{PROJECT}/volumes",
        headers=headers(PROJECT) | {"X-OpenStack-Request-ID": request_id},
        json={"volume": {"size": 1, "name": f"burst-{index}"}},
    )
    burst.creates[response.status_code] += 1
    if response.status_code == 202:
        burst.accepted[request_id] = response.json()["volume"]["id"]
    else:
        burst.failed_creates.append(f"{response.status_code} {response.text[:200]}")


async def _read_until(
    client: httpx.AsyncClient, fleet: Fleet, burst: Burst, done: asyncio.Event
) -> None:
    """Lists the project's volumes, one call after another, until ``done`` (at least a few
    times after the kill)."""
    after_kill = 0
    while not done.is_set() or after_kill < 20:
        response = await client.get(
            f"{fleet.rest_url}/v3/{PROJECT}/volumes/detail", headers=headers(PROJECT)
        )
        burst.reads[response.status_code] += 1
        if response.status_code != 200:
            burst.failed_reads.append(f"{response.status_code} {response.text[:200]}")
        if burst.killed.is_set():
            after_kill += 1


async def _burst(fleet: Fleet) -> Burst:
    burst = Burst()
    gate = asyncio.Semaphore(CONCURRENCY)
    creates_done = asyncio.Event()

    async def one(client: httpx.AsyncClient, index: int) -> None:
        async with gate:
            await _create(client, fleet, burst, index)
        if sum(burst.creates.values()) == KILL_AFTER:
            # Both at once, with creates in flight on every replica.
            fleet.kill("api-1")
            fleet.kill("scheduler-1")
            burst.killed.set()

    async with httpx.AsyncClient(timeout=60) as client:
        readers = [
            asyncio.create_task(_read_until(client, fleet, burst, creates_done)) for _ in range(2)
        ]
        await asyncio.gather(*(one(client, i) for i in range(CREATES)))
        creates_done.set()
        await asyncio.gather(*readers)
    return burst


def _statuses(fleet: Fleet) -> dict[str, str]:
    rows = fleet.rows("select id, status from volumes where project_id = ?", PROJECT)
    return {volume_id: status for volume_id, status in rows}


def test_killing_an_api_and_a_scheduler_replica_mid_burst_loses_no_accepted_create(
    fleet: Fleet,
) -> None:
    before = _envoy_counters(fleet)
    started = time.monotonic()
    burst = asyncio.run(_burst(fleet))
    burst_seconds = time.monotonic() - started
    assert burst.killed.is_set()

    deadline = time.monotonic() + SETTLE_TIMEOUT
    statuses = _statuses(fleet)
    while "creating" in statuses.values() and time.monotonic() < deadline:
        time.sleep(0.2)
        statuses = _statuses(fleet)
    settled_seconds = time.monotonic() - started
    after = _envoy_counters(fleet)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    print(
        f"\ncreates {dict(burst.creates)}, reads {dict(burst.reads)}, burst {burst_seconds:.1f} s,"
        f" all settled after {settled_seconds:.1f} s; envoy: {delta}"
    )

    # Every create was answered 202: the ones that were on the killed api replica (a reset)
    # or sent to it before its health check failed (a refused connection) were retried on
    # the other one, with the same request id.
    assert burst.failed_creates == []
    assert len(burst.accepted) == CREATES
    assert delta["upstream_rq_retry"] >= 1, "no request met the killed replica"
    # A retried create answered the volume its first try made: one volume per request id,
    # and no volume nobody was told about.
    assert len(set(burst.accepted.values())) == CREATES
    assert set(statuses) == set(burst.accepted.values())
    # None stuck, none failed: placed by the surviving scheduler (at once, or by its sweep for
    # the ones offered to the dead one) and created by the managers.
    assert Counter(statuses.values()) == Counter({"available": CREATES}), statuses
    # The reads during the kill: all answered, by the surviving replica.
    assert burst.failed_reads == []
    assert burst.reads[200] >= 40
