"""Nothing lost, nothing stuck, nothing frozen: each process killed -9 in the middle of a burst
of creates, clients that hang up, a database locked under load. Real processes (``Fleet``),
real SQLite, real files; every check reads the database and the backend directories.

Each scenario prints one line of figures (accepted, available, error, stuck, leaked quota,
orphans, time to recover): ``pytest -s tests/e2e/test_durability.py`` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.fleet import Fleet
from tests.e2e.helpers import wait_for_404, wait_for_status
from tests.postgres import sqlite_only

BURST = 40
#: How long after its restart every accepted create must be available.
RECOVERY_BUDGET = 5.0


@dataclass
class Outcome:
    accepted: list[str]
    answers: list[int]


def _headers(project: str) -> dict[str, str]:
    return {"X-Auth-Token": f"u1:{project}", "Content-Type": "application/json"}


async def _create(client: httpx.AsyncClient, fleet: Fleet, project: str) -> tuple[int, str | None]:
    try:
        response = await client.post(
            f"{fleet.rest_url}/v3/{project}/volumes",
            headers=_headers(project),
            json={"volume": {"size": 1}},
        )
    except httpx.TransportError:
        return 0, None
    if response.status_code == 202:
        return 202, str(response.json()["volume"]["id"])
    return response.status_code, None


async def burst(fleet: Fleet, project: str, count: int = BURST, spread: float = 1.0) -> Outcome:
    """``count`` creates, started ``spread / count`` seconds apart."""

    async def one(index: int, client: httpx.AsyncClient) -> tuple[int, str | None]:
        await asyncio.sleep(index * spread / count)
        return await _create(client, fleet, project)

    async with httpx.AsyncClient(timeout=30) as client:
        results = await asyncio.gather(*(one(i, client) for i in range(count)))
    return Outcome(
        accepted=[volume_id for _, volume_id in results if volume_id],
        answers=[status for status, _ in results],
    )


def wait_settled(fleet: Fleet, project: str, timeout: float) -> float:
    """Waits until no volume of the project is being created; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        busy = fleet.rows(
            "select count(*) from volumes where project_id = ? and status = 'creating'", project
        )[0][0]
        if busy == 0:
            return time.monotonic()
        if time.monotonic() > deadline:
            return float("inf")
        time.sleep(0.05)


@dataclass
class Figures:
    accepted: int
    available: int
    error: int
    stuck: int
    leaked_quota: dict[str, tuple[int, int]]
    orphans: list[str]
    recover_s: float

    def line(self, fault: str) -> str:
        return (
            f"| {fault} | {self.accepted} | {self.available} | {self.error} | {self.stuck} | "
            f"{self.leaked_quota or 0} | {len(self.orphans)} | {self.recover_s:.2f} |"
        )


def figures(fleet: Fleet, project: str, accepted: list[str], recover_s: float) -> Figures:
    rows = dict(
        fleet.rows("select id, status from volumes where project_id = ?", project)  # type: ignore[arg-type]
    )
    hosts = dict(fleet.rows("select id, host from volumes where project_id = ?", project))  # type: ignore[arg-type]
    sizes = fleet.rows(
        "select count(*), coalesce(sum(size), 0) from volumes where project_id = ? and quota_held",
        project,
    )[0]
    usage = {
        resource: (in_use, reserved)
        for resource, in_use, reserved in fleet.rows(
            "select resource, in_use, reserved from quota_usages where project_id = ?", project
        )
    }
    expected = {"volumes": sizes[0], "gigabytes": sizes[1]}
    leaked = {
        resource: usage.get(resource, (0, 0))
        for resource in expected
        if usage.get(resource, (0, 0)) != (expected[resource], 0)
    }
    reservations = fleet.rows("select count(*) from reservations where project_id = ?", project)
    if reservations[0][0]:
        leaked["reservations"] = (reservations[0][0], 0)
    orphans = [
        f"{backend}/{volume_id}"
        for backend, ids in fleet.volume_files().items()
        for volume_id in ids
        if (host := hosts.get(volume_id)) is None or f"@{backend}" not in host
    ]
    statuses = [rows.get(volume_id) for volume_id in accepted]
    return Figures(
        accepted=len(accepted),
        available=statuses.count("available"),
        error=statuses.count("error"),
        stuck=sum(1 for s in rows.values() if s not in ("available", "error")),
        leaked_quota=leaked,
        orphans=orphans,
        recover_s=recover_s,
    )


def assert_all_available(fleet: Fleet, project: str, result: Figures) -> None:
    assert result.available == result.accepted, result
    statuses = {
        s for (s,) in fleet.rows("select status from volumes where project_id = ?", project)
    }
    assert statuses <= {"available"}, statuses
    assert result.stuck == 0 and not result.leaked_quota and not result.orphans, result
    held = fleet.rows(
        "select count(*) from volumes where project_id = ? and worker is not null", project
    )
    assert held == [(0,)]


def warm_up(fleet: Fleet) -> None:
    """One create and delete, in a project of its own: the services' database connections are
    open (PostgreSQL's pool starts empty) before a test times its kills."""
    project = uuid.uuid4().hex
    with httpx.Client(timeout=30) as client:
        created = client.post(
            f"{fleet.rest_url}/v3/{project}/volumes",
            headers=_headers(project),
            json={"volume": {"size": 1}},
        )
        assert created.status_code == 202, created.text
        url = f"{fleet.rest_url}/v3/{project}/volumes/{created.json()['volume']['id']}"
        wait_for_status(client, url, _headers(project), "available")
        assert client.delete(url, headers=_headers(project)).status_code == 202
        assert wait_for_404(client, url, _headers(project)).status_code == 404


@pytest.fixture()
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path, work={"unplaced_grace": 1.0, "manager_lease": 3.0})
    running.start_all()
    warm_up(running)
    yield running
    running.stop_all()


@pytest.fixture()
def project() -> str:
    return uuid.uuid4().hex


def _burst_in_background(fleet: Fleet, project: str) -> tuple[threading.Thread, list[Outcome]]:
    """The burst runs in a thread, so that the test's own thread kills and starts processes:
    Envoy asks for SIGTERM when the thread that started it ends (``PR_SET_PDEATHSIG``)."""
    outcomes: list[Outcome] = []
    thread = threading.Thread(
        target=lambda: outcomes.append(asyncio.run(burst(fleet, project))), daemon=True
    )
    thread.start()
    return thread, outcomes


@pytest.mark.parametrize("victim", ["scheduler", "volume:file-1", "api", "gateway"])
def test_kill_mid_burst_then_restart(fleet: Fleet, project: str, victim: str) -> None:
    thread, outcomes = _burst_in_background(fleet, project)
    time.sleep(0.3)
    fleet.kill(victim)
    time.sleep(0.5)
    fleet.start(victim)
    restarted = time.monotonic()
    thread.join(60)
    outcome = outcomes[0]
    settled = wait_settled(fleet, project, timeout=RECOVERY_BUDGET + 10)
    result = figures(fleet, project, outcome.accepted, settled - restarted)
    print(result.line(f"kill -9 {victim}"), outcome.answers)
    assert outcome.accepted, outcome.answers
    assert all(status in (0, 202, 503) for status in outcome.answers), outcome.answers
    assert_all_available(fleet, project, result)
    assert result.recover_s <= RECOVERY_BUDGET, result
    # And a create right after the restart is served at once, not after a reconnect delay.
    fresh = asyncio.run(burst(fleet, project, count=1, spread=0))
    assert len(fresh.accepted) == 1, fresh.answers
    assert wait_settled(fleet, project, timeout=2.0) < float("inf")
    assert fleet.rows("select status from volumes where id = ?", fresh.accepted[0]) == [
        ("available",)
    ]


def test_manager_killed_with_a_second_backend_needs_no_restart(tmp_path: Path) -> None:
    fleet = Fleet(
        tmp_path,
        backends=("file-1", "file-2"),
        work={"unplaced_grace": 1.0, "manager_lease": 3.0},
    )
    fleet.start_all()
    try:
        project = uuid.uuid4().hex
        thread, outcomes = _burst_in_background(fleet, project)
        time.sleep(0.3)
        fleet.kill("volume:file-1")
        killed_at = time.monotonic()
        thread.join(60)
        outcome = outcomes[0]
        settled = wait_settled(fleet, project, timeout=30)
        result = figures(fleet, project, outcome.accepted, settled - killed_at)
        print(result.line("kill -9 volume:file-1, second backend, no restart"))
        assert len(outcome.accepted) == BURST, outcome.answers
        # The images file-1 made before it died and no longer owns are orphans until it is back.
        orphans_on_dead = [o for o in result.orphans if o.startswith("file-1/")]
        result.orphans = [o for o in result.orphans if not o.startswith("file-1/")]
        assert_all_available(fleet, project, result)
        fleet.start("volume:file-1")
        assert wait_settled(fleet, project, timeout=10) < float("inf")
        # The manager serves while its recovery runs: its orphans go shortly after it answers.
        deadline = time.monotonic() + 15
        after = figures(fleet, project, outcome.accepted, 0.0)
        while after.orphans and time.monotonic() < deadline:
            time.sleep(0.1)
            after = figures(fleet, project, outcome.accepted, 0.0)
        assert after.orphans == [], (orphans_on_dead, after.orphans)
    finally:
        fleet.stop_all()


def test_clients_that_hang_up_never_freeze_the_product(fleet: Fleet, project: str) -> None:
    rng = random.Random(6)

    async def impatient(client_timeout: float) -> None:
        async with httpx.AsyncClient(timeout=client_timeout) as client:
            with contextlib.suppress(httpx.TransportError):
                await client.post(
                    f"{fleet.rest_url}/v3/{project}/volumes",
                    headers=_headers(project),
                    json={"volume": {"size": 1}},
                )

    async def rounds() -> None:
        for _ in range(5):
            await asyncio.gather(*(impatient(rng.uniform(0.001, 0.05)) for _ in range(20)))
            started = time.monotonic()
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(
                    f"{fleet.rest_url}/v3/{project}/volumes", headers=_headers(project)
                )
            assert response.status_code == 200
            assert time.monotonic() - started < 2.0

    asyncio.run(rounds())
    wait_settled(fleet, project, timeout=15)
    ids = [
        volume_id
        for (volume_id,) in fleet.rows("select id from volumes where project_id = ?", project)
    ]
    result = figures(fleet, project, ids, 0.0)
    print(result.line("clients hanging up (5 x 20)"))
    assert_all_available(fleet, project, result)


@sqlite_only
def test_database_locked_mid_load_fails_cleanly_and_recovers(fleet: Fleet, project: str) -> None:
    locked = threading.Event()

    def hold_lock() -> None:
        time.sleep(0.3)
        with sqlite3.connect(fleet.data_dir / "cindermesh.db", timeout=30) as conn:
            conn.execute("BEGIN EXCLUSIVE")
            locked.set()
            time.sleep(3.0)
            conn.rollback()

    threading.Thread(target=hold_lock, daemon=True).start()
    outcome = asyncio.run(burst(fleet, project, count=40, spread=2.0))
    assert locked.is_set()
    assert set(outcome.answers) <= {202, 503}, outcome.answers
    settled = wait_settled(fleet, project, timeout=15)
    result = figures(fleet, project, outcome.accepted, settled - time.monotonic())
    print(result.line("database locked 3 s"), outcome.answers)
    assert_all_available(fleet, project, result)
    # And it answers again, promptly.
    response = httpx.get(f"{fleet.rest_url}/v3/{project}/volumes", headers=_headers(project))
    assert response.status_code == 200
