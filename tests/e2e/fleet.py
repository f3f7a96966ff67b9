"""The product's processes started one by one, so that a test can kill -9 any of them and
start it again: Envoy, the api, the scheduler and one volume manager per backend, on free
loopback ports, with a real SQLite database and the file driver in a temporary data dir."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.cluster import free_port


@dataclass
class Fleet:
    base: Path
    backends: tuple[str, ...] = ("file-1",)
    #: Extra lines for the config's ``[work]`` section.
    work: dict[str, float] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ["rest", "admin", "api", "scheduler", *(f"volume:{b}" for b in self.backends)]
        self.ports = {name: free_port() for name in names}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        backends = "\n".join(
            f"""
[[backends]]
name = "{backend}"
driver = "file"
port = {self.ports[f"volume:{backend}"]}
total_capacity_gb = 1000
report_interval = 2.0
"""
            for backend in self.backends
        )
        work = "\n".join(f"{key} = {value}" for key, value in self.work.items())
        self.config_path.write_text(
            f"""
data_dir = "{self.data_dir}"
host_name = "fleet"

[gateway]
port = {self.ports["rest"]}
admin_port = {self.ports["admin"]}

[api]
port = {self.ports["api"]}

[scheduler]
port = {self.ports["scheduler"]}

[quotas]
volumes = 1000
gigabytes = 10000

[work]
{work}
{backends}
"""
        )
        subprocess.run(
            [sys.executable, "-m", "cindermesh.cli", "init-db"],
            env=self.env(),
            check=True,
            capture_output=True,
        )

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def config_path(self) -> Path:
        return self.base / "cindermesh.toml"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['rest']}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CINDERMESH_CONFIG"] = str(self.config_path)
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        return env

    def _argv(self, name: str) -> list[str]:
        if name.startswith("volume:"):
            return ["volume", "--backend", name.partition(":")[2]]
        return ["gateway"] if name == "gateway" else [name]

    def start(self, name: str, timeout: float = 30.0) -> None:
        """Starts one process and waits until it answers."""
        log = (self.base / f"{name.replace(':', '-')}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cindermesh.cli", *self._argv(name)],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(name, timeout)

    def start_all(self) -> None:
        for name in ("scheduler", *(f"volume:{b}" for b in self.backends), "api", "gateway"):
            self.start(name)

    def wait_ready(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready(name):
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready after {timeout} s")
            time.sleep(0.05)

    def _ready(self, name: str) -> bool:
        if name == "gateway":
            try:
                return httpx.get(self.rest_url + "/v3", timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        with grpc.insecure_channel(f"127.0.0.1:{self.ports[name]}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def kill(self, name: str) -> None:
        """kill -9, as a crash."""
        process = self.processes.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data_dir / "cindermesh.db", timeout=30) as conn:
            return list(conn.execute(query, params))

    def volume_files(self) -> dict[str, list[str]]:
        """Image ids on each backend."""
        root = self.data_dir / "volumes"
        return {
            backend: sorted(
                p.name.removeprefix("volume-") for p in (root / backend).glob("volume-*")
            )
            for backend in self.backends
        }
