"""Services starting at the same moment on a fresh database, with no `cindermesh db upgrade`
before them (as compose or Kubernetes may start them): each upgrades the schema at start, one
of them migrates and the others wait for it and find it done. On the run's engine."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh.db.migrations.upgrade import head_revision
from tests.e2e.cluster import make_cluster
from tests.e2e.helpers import db_rows

STARTUP_TIMEOUT = 90.0


def serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def test_services_starting_at_once_on_a_fresh_database_make_one_schema(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    cluster.data_dir.mkdir(parents=True)
    commands = {
        "api": ["api"],
        "scheduler": ["scheduler"],
        "volume": ["volume", "--backend", "file-1"],
    }
    addresses = {
        "api": cluster.api_address,
        "scheduler": f"127.0.0.1:{cluster.scheduler_port}",
        "volume": f"127.0.0.1:{cluster.backend_port}",
    }
    logs = {name: tmp_path / f"{name}.log" for name in commands}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "cindermesh.cli", *argv],
            env=cluster.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=logs[name].open("wb"),
        )
        for name, argv in commands.items()
    }
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        waiting = dict(addresses)
        while waiting:
            exited = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
            assert not exited, (exited, {n: logs[n].read_text() for n in exited})
            assert time.monotonic() < deadline, f"not serving: {sorted(waiting)}"
            waiting = {name: a for name, a in waiting.items() if not serving(a)}
            time.sleep(0.2)

        assert db_rows(cluster, "select version_num from alembic_version") == [(head_revision(),)]
        assert db_rows(cluster, "select count(*) from volume_types where name = '__DEFAULT__'") == [
            (1,)
        ]
        said = {name: log.read_text() for name, log in logs.items()}
        migrated = [name for name, text in said.items() if "Running upgrade  -> 0001" in text]
        assert len(migrated) == 1, said
        assert not [name for name, text in said.items() if "Traceback" in text], said
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
