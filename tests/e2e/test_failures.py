"""Failures along the path leave nothing behind: real processes started one by one (the
launcher would start every one of them), so that a hop can be absent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import db_rows, headers, volume_files, wait_for_status


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
    """Envoy and the api only: no scheduler and no volume manager is running (yet)."""
    cluster = make_cluster(Path(tmp_path_factory.mktemp("no-scheduler")))
    subprocess.run(
        [sys.executable, "-m", "cindermesh.cli", "db", "upgrade"], env=cluster.env(), check=True
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


def test_scheduler_unreachable_accepts_and_the_volume_waits_for_one(
    without_scheduler: Cluster, project: str
) -> None:
    """As Cinder with RabbitMQ: the create is accepted (the row is the durable record), its
    quota counted once, and the volume is placed when a scheduler and a backend start."""
    cluster = without_scheduler
    response = httpx.post(
        f"{cluster.rest_url}/v3/{project}/volumes",
        headers=headers(project),
        json={"volume": {"size": 1, "name": "waits"}},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    volume_id = response.json()["volume"]["id"]
    assert db_rows(cluster, "select status, host from volumes where id = ?", volume_id) == [
        ("creating", None)
    ]
    assert db_rows(cluster, "select id from reservations where project_id = ?", project) == []
    usages = dict(
        db_rows(
            cluster,
            "select resource, in_use from quota_usages where project_id = ? and reserved = 0",
            project,
        )
    )
    assert usages["volumes"] == 1 and usages["gigabytes"] == 1
    processes = [_start(cluster, "scheduler"), _start(cluster, "volume", "--backend", "file-1")]
    try:
        with httpx.Client(timeout=10) as client:
            url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
            wait_for_status(client, url, headers(project), "available", timeout=30)
        assert [p.name for p in volume_files(cluster)] == [f"volume-{volume_id}"]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
