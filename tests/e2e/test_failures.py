"""Failures along the path leave nothing behind: real processes started one by one (the
launcher would stop everything when one is missing), so that a hop can be absent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import db_rows, headers, volume_files


def _start(cluster: Cluster, *command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cindermesh.cli", *command],
        env=cluster.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def without_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Envoy and the api only: the scheduler the api hands volumes to is not running."""
    cluster = make_cluster(Path(tmp_path_factory.mktemp("no-scheduler")))
    subprocess.run(
        [sys.executable, "-m", "cindermesh.cli", "init-db"], env=cluster.env(), check=True
    )
    processes = [_start(cluster, "api"), _start(cluster, "gateway")]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(cluster.rest_url + "/v3").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("api and gateway did not come up")
            time.sleep(0.2)
        yield cluster
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def test_scheduler_unreachable_is_503_and_leaves_nothing(
    without_scheduler: Cluster, project: str
) -> None:
    cluster = without_scheduler
    response = httpx.post(
        f"{cluster.rest_url}/v3/{project}/volumes",
        headers=headers(project),
        json={"volume": {"size": 1, "name": "orphan?"}},
        timeout=30,
    )
    assert response.status_code == 503
    assert response.json() == {
        "serviceUnavailable": {
            "code": 503,
            "message": "The server is currently unavailable. Please try again at a later time.",
        }
    }
    assert db_rows(cluster, "select id from volumes where project_id = ?", project) == []
    assert db_rows(cluster, "select id from reservations where project_id = ?", project) == []
    usages = db_rows(
        cluster, "select in_use, reserved from quota_usages where project_id = ?", project
    )
    assert usages and all(row == (0, 0) for row in usages)
    assert volume_files(cluster) == []
