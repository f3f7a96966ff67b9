"""The product's processes started one by one, so that a test can kill -9 (or SIGTERM) any of
them and start it again: Envoy, the api and scheduler replicas and one volume manager per
backend, on free loopback ports, with a real SQLite database and the file driver in a temporary data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh.launcher import replica_child_name
from tests import postgres
from tests.e2e.cluster import free_port


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (scheduler replicas listen on
    ``port + i``)."""
    for _ in range(100):
        first = free_port()
        ports = range(first, first + count)
        if first + count <= 65535 and all(_is_free(p) for p in ports):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _toml(value: object) -> str:
    """A TOML value: strings and lists of strings as JSON writes them, booleans in lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | list | tuple):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def health_status(port: int, timeout: float = 1.0) -> int | None:
    """The overall ``grpc.health.v1`` status of the server on ``port``, None when it does not
    answer."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


def scheduler_name(replica: int) -> str:
    """As the launcher names them: ``scheduler``, ``scheduler-1``, ..."""
    return replica_child_name("scheduler", replica)


def api_name(replica: int) -> str:
    """As the launcher names them: ``api``, ``api-1``, ..."""
    return replica_child_name("api", replica)


@dataclass
class Fleet:
    base: Path
    backends: tuple[str, ...] = ("file-1",)
    #: Extra lines for the config's ``[work]`` section.
    work: dict[str, float] = field(default_factory=dict)
    #: Settings of each backend over the defaults below (e.g. ``total_capacity_gb``,
    #: ``availability_zone``, ``provisioning``).
    backend_settings: dict[str, dict[str, object]] = field(default_factory=dict)
    #: Scheduler replicas (processes ``scheduler``, ``scheduler-1``, ...).
    schedulers: int = 1
    #: Extra lines for the config's ``[scheduler]`` section.
    scheduler_settings: dict[str, object] = field(default_factory=dict)
    #: Api replicas (processes ``api``, ``api-1``, ...), all behind the gateway.
    apis: int = 1
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: The database the services use (``tests.postgres``: SQLite in the data dir, or a fresh
    #: PostgreSQL database).
    database_url: str = ""

    def __post_init__(self) -> None:
        names = ["rest", "admin", *(f"volume:{b}" for b in self.backends)]
        self.ports = {name: free_port() for name in names}
        first = free_port_range(self.schedulers)
        self.ports |= {scheduler_name(i): first + i for i in range(self.schedulers)}
        first_api = free_port_range(self.apis)
        self.ports |= {api_name(i): first_api + i for i in range(self.apis)}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = self.database_url or postgres.database_url_for(self.data_dir)
        backends = "\n".join(
            "\n[[backends]]\n"
            + "\n".join(
                f"{key} = {_toml(value)}"
                for key, value in (
                    {
                        "name": backend,
                        "driver": "file",
                        "port": self.ports[f"volume:{backend}"],
                        "total_capacity_gb": 1000,
                        "report_interval": 2.0,
                    }
                    | self.backend_settings.get(backend, {})
                ).items()
            )
            for backend in self.backends
        )
        work = "\n".join(f"{key} = {value}" for key, value in self.work.items())
        scheduler = "\n".join(
            f"{key} = {_toml(value)}"
            for key, value in ({"replicas": self.schedulers} | self.scheduler_settings).items()
        )
        self.config_path.write_text(
            f"""
data_dir = "{self.data_dir}"
database_url = "{self.database_url}"
host_name = "fleet"

[gateway]
port = {self.ports["rest"]}
admin_port = {self.ports["admin"]}

[api]
port = {first_api}
replicas = {self.apis}

[scheduler]
port = {first}
{scheduler}

[quotas]
volumes = 1000
gigabytes = 10000

[work]
{work}
{backends}
"""
        )
        subprocess.run(
            [sys.executable, "-m", "cindermesh.cli", "db", "upgrade"],
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

    @property
    def scheduler_names(self) -> list[str]:
        return [scheduler_name(i) for i in range(self.schedulers)]

    @property
    def api_names(self) -> list[str]:
        return [api_name(i) for i in range(self.apis)]

    def _argv(self, name: str) -> list[str]:
        if name.startswith("volume:"):
            return ["volume", "--backend", name.partition(":")[2]]
        if name.startswith(("scheduler-", "api-")):
            service, _, replica = name.partition("-")
            return [service, "--replica", replica]
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
        names = (
            *self.scheduler_names,
            *(f"volume:{b}" for b in self.backends),
            *self.api_names,
            "gateway",
        )
        for name in names:
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
        return health_status(self.ports[name]) == health_pb2.HealthCheckResponse.SERVING

    def kill(self, name: str) -> None:
        """kill -9, as a crash."""
        process = self.processes.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def terminate(self, name: str, timeout: float = 60.0) -> int:
        """SIGTERM, as an orchestrator stopping it, and its exit status once it has stopped
        (``wait_exit``)."""
        self.processes[name].terminate()
        return self.wait_exit(name, timeout)

    def wait_exit(self, name: str, timeout: float = 60.0) -> int:
        """The exit status of ``name`` once it has stopped (it is killed, and the test fails,
        if that takes more than ``timeout`` seconds)."""
        process = self.processes.pop(name)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def log(self, name: str) -> str:
        """What the process ``name`` wrote (all its runs)."""
        return (self.base / f"{name.replace(':', '-')}.log").read_text(errors="replace")

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
        """The rows of ``query`` (``?`` placeholders) on the fleet's database."""
        return postgres.rows(self.database_url, query, *params)

    def volume_files(self) -> dict[str, list[str]]:
        """Image ids on each backend."""
        root = self.data_dir / "volumes"
        return {
            backend: sorted(
                p.name.removeprefix("volume-") for p in (root / backend).glob("volume-*")
            )
            for backend in self.backends
        }
