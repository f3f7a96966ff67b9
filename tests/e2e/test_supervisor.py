"""``cindermesh up`` as a supervisor, on the real processes: a child killed with SIGKILL comes
back, the children die with the launcher, and a second launcher or server cannot take over
ports that are already served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import Cluster, free_port, make_cluster
from tests.e2e.helpers import headers, wait_for_status

CHILDREN = ("scheduler", "volume:file-1", "api", "gateway")


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = make_cluster(tmp_path_factory.mktemp("supervised"))
    cluster.start()
    yield cluster
    cluster.stop()


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet (PID 1 here reaps late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _cindermesh(cluster: Cluster, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cindermesh.cli", *args],
        env=cluster.env() | env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=20,
    )  # fmt: skip


def test_a_killed_scheduler_is_restarted_and_creates_still_complete(
    supervised: Cluster, project: str
) -> None:
    cluster = supervised
    old = cluster.pid("scheduler")
    start = len(cluster.output)
    os.kill(old, signal.SIGKILL)
    restarted = cluster.wait_output(r"cindermesh: scheduler restarted \(pid (\d+)\)", start)
    new = int(restarted.group(1))
    assert new != old and cluster.pid("scheduler") == new and not _gone(new)
    lines = "".join(cluster.output[start:])
    assert "cindermesh: scheduler exited with status -9; restarting in 0.25 s" in lines

    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=headers(project),
            json={"volume": {"size": 1, "name": "after-restart"}},
        )
        assert response.status_code == 202, response.text
        url = f"{cluster.rest_url}/v3/{project}/volumes/{response.json()['volume']['id']}"
        wait_for_status(client, url, headers(project), "available", timeout=30)


def _assert_still_serving(cluster: Cluster, pids: dict[str, int]) -> None:
    assert cluster.process is not None and cluster.process.poll() is None
    assert {name: cluster.pid(name) for name in pids} == pids
    assert httpx.get(f"{cluster.rest_url}/v3", timeout=10).status_code == 200


def test_a_second_launcher_on_the_same_data_dir_is_refused(supervised: Cluster) -> None:
    pids = {name: supervised.pid(name) for name in ("launcher", *CHILDREN)}
    began = time.monotonic()
    second = _cindermesh(supervised, "up")
    assert time.monotonic() - began < 10
    assert second.returncode != 0
    assert f"another launcher (pid {pids['launcher']}) is running" in second.stderr
    assert str(supervised.run_dir / "launcher.lock") in second.stderr
    _assert_still_serving(supervised, pids)


def test_a_second_launcher_on_served_ports_names_their_holder(
    supervised: Cluster, tmp_path: Path
) -> None:
    pids = {name: supervised.pid(name) for name in ("launcher", *CHILDREN)}
    second = _cindermesh(supervised, "up", CINDERMESH_DATA_DIR=str(tmp_path / "data"))
    assert second.returncode != 0
    assert (
        f"port {supervised.rest_port} on 127.0.0.1, for the REST gateway (Envoy), is already in"
        f" use: held by pid {pids['gateway']} ("
    ) in second.stderr
    assert "envoy" in second.stderr
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started
    _assert_still_serving(supervised, pids)


def test_a_second_grpc_server_on_a_served_port_fails_to_bind(supervised: Cluster) -> None:
    pids = {name: supervised.pid(name) for name in ("launcher", *CHILDREN)}
    second = _cindermesh(supervised, "scheduler")
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{supervised.scheduler_port}" in second.stderr
    _assert_still_serving(supervised, pids)


def test_a_second_gateway_on_a_served_port_fails_to_bind(supervised: Cluster) -> None:
    pids = {name: supervised.pid(name) for name in ("launcher", *CHILDREN)}
    # Its own admin port, so that only the REST listener can clash.
    second = _cindermesh(supervised, "gateway", CINDERMESH_GATEWAY__ADMIN_PORT=str(free_port()))
    assert second.returncode != 0
    assert "Address already in use" in second.stderr + second.stdout
    _assert_still_serving(supervised, pids)


def test_the_children_die_with_a_launcher_killed_with_sigkill(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    cluster.start()
    try:
        assert cluster.process is not None
        children = [cluster.pid(name) for name in CHILDREN]
        assert not any(_gone(pid) for pid in children)
        cluster.process.kill()
        cluster.process.wait()
        deadline = time.monotonic() + 5
        while not all(_gone(pid) for pid in children):
            assert time.monotonic() < deadline, [p for p in children if not _gone(p)]
            time.sleep(0.05)
    finally:
        cluster.stop()
