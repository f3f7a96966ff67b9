"""``cindermesh status`` against the real processes: everything up (exit 0), then a volume
manager killed (a Fleet does not restart it) or hung (under the launcher, which would restart
a killed one) is down, and status exits 1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.fleet import Fleet

Document = dict[str, Any]


def status(env: dict[str, str], *extra: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "cindermesh.cli", "status", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def status_until(
    env: dict[str, str], condition: Callable[[Document], bool], timeout: float = 30.0
) -> tuple[int, Document]:
    """Asks until ``condition`` holds for the JSON answer (the schedulers learn of a backend's
    report, or of its stream's end, a moment after it happens); fails with the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = status(env, "--json")
        document: Document = json.loads(out)
        if condition(document):
            return code, document
        if time.monotonic() > deadline:
            pytest.fail(f"status never got there:\n{json.dumps(document, indent=2)}")
        time.sleep(0.5)


def service(document: Document, name: str) -> Document:
    (found,) = [s for s in document["services"] if s["name"] == name]
    return found


def pools(document: Document, backend: str) -> list[Document]:
    return [p for p in document["pools"] if p["backend"] == backend]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path, backends=("file-1", "file-2"), schedulers=2, apis=2)
    running.start_all()
    yield running
    running.stop_all()


def test_a_killed_volume_manager_is_down(fleet: Fleet) -> None:
    env = fleet.env()
    code, document = status_until(env, lambda d: d["ok"])
    assert code == 0
    kinds = [(s["kind"], s["name"]) for s in document["services"]]
    assert kinds == [
        ("api", "api"),
        ("api", "api-1"),
        ("scheduler", "scheduler"),
        ("scheduler", "scheduler-1"),
        ("volume", "fleet@file-1"),
        ("volume", "fleet@file-2"),
    ]
    (pool,) = pools(document, "fleet@file-2")
    assert pool["pool"] == "file-2" and pool["up"] and pool["total_capacity_gb"] == 1000
    assert pool["last_report"]
    _, table = status(env)
    assert table.splitlines()[-1] == "all up"

    fleet.kill("volume:file-2")
    code, document = status_until(env, lambda d: not pools(d, "fleet@file-2")[0]["up"])
    assert code == 1 and not document["ok"]
    down = service(document, "fleet@file-2")
    assert not down["up"] and down["health"].startswith("unreachable")
    assert pools(document, "fleet@file-2") == [
        {
            "backend": "fleet@file-2",
            "pool": None,
            "up": False,
            "last_report": None,
            "total_capacity_gb": None,
            "free_capacity_gb": None,
            "allocated_capacity_gb": None,
            "reason": "no pool reported to the scheduler",
        }
    ]
    assert service(document, "fleet@file-1")["up"] and pools(document, "fleet@file-1")[0]["up"]
    code, table = status(env)
    assert code == 1
    assert re.search(r"^fleet@file-2 +down: no pool reported to the scheduler", table, re.M)

    fleet.start("volume:file-2")
    assert status_until(env, lambda d: d["ok"])[0] == 0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = make_cluster(tmp_path)
    running.start()
    yield running
    running.stop()


def test_a_hung_volume_manager_is_down_and_back_when_it_answers(cluster: Cluster) -> None:
    env = cluster.env()
    code, document = status_until(env, lambda d: d["ok"])
    assert code == 0
    assert [s["name"] for s in document["services"]] == ["api", "scheduler", "e2ehost@file-1"]
    manager = cluster.pid("volume:file-1")
    os.kill(manager, signal.SIGSTOP)
    try:
        code, document = status_until(env, lambda d: not d["ok"])
        assert code == 1
        hung = service(document, "e2ehost@file-1")
        assert hung["health"].startswith("unreachable: DEADLINE_EXCEEDED") and not hung["up"]
        assert service(document, "api")["up"] and service(document, "scheduler")["up"]
    finally:
        os.kill(manager, signal.SIGCONT)
    assert status_until(env, lambda d: d["ok"])[0] == 0


def listens_on_every_address(port: int) -> bool:
    """Whether a socket listens on ``0.0.0.0:port``, or ``[::]:port`` (gRPC makes 0.0.0.0 a
    dual-stack socket), by ``/proc/net/tcp`` and ``tcp6``."""
    wanted = {f"00000000:{port:04X}", f"{'0' * 32}:{port:04X}"}
    rows = [
        row.split()
        for table in ("tcp", "tcp6")
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]
    ]
    return any(fields[1] in wanted and fields[3] == "0A" for fields in rows)


def test_services_found_by_name_and_listening_everywhere(tmp_path: Path) -> None:
    """The compose and Kubernetes configuration on one machine: every service reached by a DNS
    name (``localhost``), listening on ``0.0.0.0`` (``listen_host``), Envoy resolving the api's
    name: a create completes, status resolves the names and finds everything up."""
    import httpx

    from tests.e2e.helpers import headers, wait_for_status

    running = make_cluster(tmp_path)
    text = running.config_path.read_text()
    text = text.replace(
        'host_name = "e2ehost"\n', 'host_name = "e2ehost"\nlisten_host = "0.0.0.0"\n'
    )
    for section in ("[api]\n", "[scheduler]\n", "[[backends]]\n"):
        text = text.replace(section, f'{section}host = "localhost"\n')
    running.config_path.write_text(text)
    running.start()
    try:
        for port in (running.api_port, running.scheduler_port, running.backend_port):
            assert listens_on_every_address(port), port
        project = "5ca1ab1e000000000000000000000007"
        with httpx.Client(base_url=running.rest_url, timeout=30) as client:
            created = client.post(
                f"/v3/{project}/volumes", headers=headers(project), json={"volume": {"size": 1}}
            )
            assert created.status_code == 202, created.text
            url = f"/v3/{project}/volumes/{created.json()['volume']['id']}"
            wait_for_status(client, url, headers(project), "available")
        code, document = status_until(running.env(), lambda d: d["ok"])
        assert code == 0
        addresses = {s["name"]: s["address"] for s in document["services"]}
        assert addresses["api"] == f"127.0.0.1:{running.api_port}"  # resolved from localhost
        assert addresses["e2ehost@file-1"] == f"localhost:{running.backend_port}"  # registered
    finally:
        running.stop()
