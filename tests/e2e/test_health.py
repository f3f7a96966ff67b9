"""Health that means something: each service answers NOT_SERVING while a dependency it needs is
down and SERVING again once it is back, with the dependency really stopped: a PostgreSQL server
of the test's own (the api, the scheduler and the volume manager need the database) and the
Ceph cluster (an RBD volume manager needs its storage)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from grpc_health.v1 import health_pb2

from deploy.ceph.ceph_cluster import start_ceph, stop_ceph
from tests.e2e.ceph import Ceph
from tests.e2e.fleet import Fleet, health_status
from tests.e2e.helpers import headers, wait_for_status
from tests.e2e.test_rbd_backend import make_rbd_cluster

REPO = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PROJECT = "5ca1ab1e0000000000000000000000e1"


def _health(port: int) -> int | None:
    return health_status(port, timeout=2)


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Waits for ``condition`` (a bound on a wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.05)


@dataclass
class Postgres:
    """A PostgreSQL server of this test's own (deploy/postgres), stopped and started again on
    the same port."""

    state: Path
    url: str

    @property
    def _db_dir(self) -> Path:
        return self.state / "cluster" / "db"

    def _pg_ctl(self, *args: str) -> None:
        bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        run = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(
            [*run, str(bin_dir / "pg_ctl"), *args, "-D", str(self._db_dir)],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast", "-w")

    def start(self) -> None:
        """As it ran before (its options, so its port, from ``postmaster.opts``)."""
        argv = shlex.split((self._db_dir / "postmaster.opts").read_text())
        options = [a for a in argv[1:] if a != "-D" and a != str(self._db_dir)]
        log = str(self.state / "cluster" / "server.log")
        self._pg_ctl("start", "-w", "-l", log, "-o", shlex.join(options))


@pytest.fixture
def postgres_server() -> Iterator[Postgres]:
    # Under /tmp and open to the postgres user, so that the cluster lives in it.
    state = Path(tempfile.mkdtemp(prefix="cindermesh-health-pg-", dir="/tmp"))
    state.chmod(0o755)
    try:
        url = subprocess.run(
            [str(REPO / "deploy" / "postgres" / "up"), str(state)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout.strip()
        yield Postgres(state, url)
    finally:
        subprocess.run(
            [str(REPO / "deploy" / "postgres" / "down"), str(state), "--remove"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(state, ignore_errors=True)


def test_every_service_is_not_serving_while_the_database_is_down(
    tmp_path: Path, postgres_server: Postgres
) -> None:
    database_url = postgres_server.url.replace("postgresql://", "postgresql+asyncpg://", 1)
    fleet = Fleet(tmp_path, database_url=database_url)
    try:
        fleet.start_all()
        ports = {name: fleet.ports[name] for name in ("api", "scheduler", "volume:file-1")}
        assert {name: _health(port) for name, port in ports.items()} == dict.fromkeys(
            ports, SERVING
        )

        postgres_server.stop()
        for name, port in ports.items():
            _until(lambda port=port: _health(port) == NOT_SERVING, f"{name} NOT_SERVING")
        for name in ports:
            assert "health: database down" in fleet.log(name)

        postgres_server.start()
        for name, port in ports.items():
            _until(lambda port=port: _health(port) == SERVING, f"{name} SERVING again")
        # And the product works again, through the gateway.
        with httpx.Client(timeout=30) as client:
            created = client.post(
                f"{fleet.rest_url}/v3/{PROJECT}/volumes",
                headers=headers(PROJECT),
                json={"volume": {"size": 1}},
            )
            assert created.status_code == 202, created.text
            url = f"{fleet.rest_url}/v3/{PROJECT}/volumes/{created.json()['volume']['id']}"
            wait_for_status(client, url, headers(PROJECT), "available", timeout=30)
    finally:
        fleet.stop_all()


def test_an_rbd_volume_manager_is_not_serving_while_ceph_is_down(
    tmp_path: Path, ceph: Ceph
) -> None:
    cluster = make_rbd_cluster(tmp_path, ceph)
    port = cluster.backend_port
    stop_ceph(ceph.state_dir)
    try:
        # Started with Ceph down: the launcher says so, naming the child, and goes on.
        cluster.start()
        cluster.wait_output(r"volume:rbd-1 is up on \S+ but NOT_SERVING: a dependency it needs")
        assert _health(port) == NOT_SERVING
        # The api and the scheduler do not need Ceph.
        assert _health(cluster.api_port) == SERVING
        assert _health(cluster.scheduler_port) == SERVING
        start_ceph(ceph.state_dir)
        _until(lambda: _health(port) == SERVING, "the volume manager SERVING", 60)

        stop_ceph(ceph.state_dir)
        _until(lambda: _health(port) == NOT_SERVING, "the volume manager NOT_SERVING")
        start_ceph(ceph.state_dir)
        _until(lambda: _health(port) == SERVING, "the volume manager SERVING again", 60)
        assert "health: storage down" in "".join(cluster.output)
    finally:
        cluster.stop()
        start_ceph(ceph.state_dir)
