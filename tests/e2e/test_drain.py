"""Graceful drain on SIGTERM: a service stopped in the middle of a create finishes it (the
volume ends ``available`` with no restart) and exits 0 within its grace period."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.fleet import Fleet
from tests.e2e.helpers import headers
from tests.postgres import sqlite_only

PROJECT = "5ca1ab1e00000000000000000000d1a1"
DRAIN_TIMEOUT = 30.0
MIB = 1 << 20
#: Data in the source volume: its clone's copy takes long enough to be caught in the middle.
SOURCE_DATA_MIB = 512
#: Shorter than the copy: the draining manager must keep renewing its lease, or a scheduler
#: takes the volume from it.
MANAGER_LEASE = 1.0


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path, work={"drain_timeout": DRAIN_TIMEOUT, "manager_lease": MANAGER_LEASE})
    running.start_all()
    yield running
    running.stop_all()


def _status(fleet: Fleet, volume_id: str) -> str:
    rows = fleet.rows("select status from volumes where id = ?", volume_id)
    return str(rows[0][0]) if rows else "absent"


def _wait_until(condition: object, what: str, timeout: float = 60.0) -> None:
    """Waits for ``condition()`` (a bound on a wait, not a timed assertion)."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.01)


def _create(fleet: Fleet, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{fleet.rest_url}/v3/{PROJECT}/volumes",
        headers=headers(PROJECT),
        json={"volume": body},
        timeout=60,
    )


def test_sigterm_to_a_volume_manager_mid_copy_finishes_the_create_and_exits_0(
    fleet: Fleet,
) -> None:
    source = _create(fleet, {"size": 2, "name": "source"}).json()["volume"]["id"]
    _wait_until(lambda: _status(fleet, source) == "available", "the source available")
    directory = fleet.data_dir / "volumes" / "file-1"
    chunk = bytes(range(256)) * (4 * MIB // 256)
    with open(directory / f"volume-{source}", "r+b") as image:
        for offset in range(0, SOURCE_DATA_MIB * MIB, len(chunk)):
            image.seek(offset)
            image.write(chunk)

    clone = _create(fleet, {"source_volid": source, "name": "clone"})
    assert clone.status_code == 202, clone.text
    clone_id = clone.json()["volume"]["id"]
    partial = directory / f".partial-volume-{clone_id}"
    _wait_until(partial.exists, "the clone's copy started")
    manager = fleet.processes["volume:file-1"]
    manager.send_signal(signal.SIGTERM)
    # Mid-copy: the copy (the driver call) is still in progress after the signal was sent
    # (it renames the partial file when it is done).
    assert partial.exists()

    assert fleet.wait_exit("volume:file-1", timeout=DRAIN_TIMEOUT) == 0
    log = fleet.log("volume:file-1")
    assert "draining" in log
    # Finished by the draining manager itself: available with no restart, the copy whole.
    assert _status(fleet, clone_id) == "available"
    assert not partial.exists()
    with open(directory / f"volume-{clone_id}", "rb") as copied:
        copied.seek((SOURCE_DATA_MIB - 4) * MIB)
        assert copied.read(len(chunk)) == chunk

    # The manager starts again and serves: the clone can be deleted.
    fleet.start("volume:file-1")
    response = httpx.delete(
        f"{fleet.rest_url}/v3/{PROJECT}/volumes/{clone_id}", headers=headers(PROJECT), timeout=30
    )
    assert response.status_code == 202
    _wait_until(lambda: _status(fleet, clone_id) == "absent", "the clone deleted")


def _api_requests_active(fleet: Fleet) -> int:
    stats = httpx.get(f"http://127.0.0.1:{fleet.ports['admin']}/stats", timeout=5).text
    for line in stats.splitlines():
        name, _, value = line.partition(": ")
        if name == "cluster.api.upstream_rq_active":
            return int(value)
    return 0


@sqlite_only
def test_sigterm_to_the_api_mid_create_answers_it_and_exits_0(fleet: Fleet) -> None:
    answer: list[httpx.Response] = []
    # The database's write lock, held by the test: the api's create waits in its transaction.
    lock = sqlite3.connect(fleet.data_dir / "cindermesh.db", timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        creating = threading.Thread(
            target=lambda: answer.append(_create(fleet, {"size": 1, "name": "in-flight"}))
        )
        creating.start()
        _wait_until(lambda: _api_requests_active(fleet) >= 1, "the create at the api")
        api = fleet.processes["api"]
        api.send_signal(signal.SIGTERM)
        _wait_until(lambda: "draining" in fleet.log("api"), "the api draining")
        # Still running: it waits for the create in flight.
        assert api.poll() is None
    finally:
        lock.rollback()
        lock.close()
    creating.join(timeout=60)
    (response,) = answer
    assert response.status_code == 202, response.text
    volume_id = response.json()["volume"]["id"]
    assert fleet.wait_exit("api", timeout=DRAIN_TIMEOUT) == 0
    # Accepted before the api stopped, and handed to the scheduler by it: available without
    # any api running.
    _wait_until(lambda: _status(fleet, volume_id) == "available", "the volume available")
