"""Starts the real product for end-to-end tests: `cindermesh up` (Envoy and the three gRPC
services as separate processes) with a temporary config, free loopback ports and data dir, on
the database the run chose (``tests.postgres``: SQLite in the data dir, or a fresh PostgreSQL
database)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cindermesh.launcher import pid_file_name
from tests.postgres import database_url_for

READY_LINE = "cindermesh is up"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    data_dir: Path
    config_path: Path
    rest_port: int
    api_port: int
    scheduler_port: int
    backend_port: int
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    #: The database the services use (``tests.postgres.rows`` reads it); by default SQLite's
    #: file in the data dir, as the services open it with no ``database_url`` set.
    database_url: str = ""

    def __post_init__(self) -> None:
        self.database_url = self.database_url or database_url_for(self.data_dir, "sqlite")

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def api_address(self) -> str:
        return f"127.0.0.1:{self.api_port}"

    @property
    def run_dir(self) -> Path:
        """Where the launcher keeps its lock and pid files."""
        return self.data_dir / "run"

    def pid(self, name: str) -> int:
        """The pid the launcher wrote for ``name`` (``launcher``, ``scheduler``, ``api``,
        ``gateway`` or ``volume:<backend>``), e.g. to ``kill -9`` it."""
        return int((self.run_dir / pid_file_name(name)).read_text())

    def wait_output(self, pattern: str, start: int = 0, timeout: float = 30.0) -> re.Match[str]:
        """The first launcher output line from index ``start`` on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output[start:]:
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.02)
        raise AssertionError(f"no output line matches {pattern!r}:\n" + "".join(self.output))

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CINDERMESH_CONFIG"] = str(self.config_path)
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        return env

    def start(self, extra_env: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        env = self.env() | (extra_env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cindermesh.cli", "up"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if READY_LINE in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("cindermesh up did not come up:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def make_cluster(
    base: Path,
    quotas: dict[str, int] | None = None,
    backend: str | None = None,
    database: str | None = None,
) -> Cluster:
    """The product's config in ``base``: ``quotas`` as given, and one backend, the file
    driver's unless ``backend`` gives its TOML lines (all but ``port``), on the ``database``
    engine (``sqlite`` or ``postgresql``; default the run's, ``tests.postgres``)."""
    data_dir = base / "data"
    cluster = Cluster(
        data_dir=data_dir,
        config_path=base / "cindermesh.toml",
        rest_port=free_port(),
        api_port=free_port(),
        scheduler_port=free_port(),
        backend_port=free_port(),
        database_url=database_url_for(data_dir, database),
    )
    quota_lines = "\n".join(f"{k} = {v}" for k, v in (quotas or {}).items())
    backend_lines = f"port = {cluster.backend_port}\n" + (
        backend
        or 'name = "file-1"\ndriver = "file"\ntotal_capacity_gb = 100\nreport_interval = 2.0'
    )
    cluster.config_path.write_text(
        f"""
data_dir = "{data_dir}"
database_url = "{cluster.database_url}"
host_name = "e2ehost"

[gateway]
port = {cluster.rest_port}
admin_port = {free_port()}

[api]
port = {cluster.api_port}

[scheduler]
port = {cluster.scheduler_port}

[quotas]
{quota_lines}

[[backends]]
{backend_lines}
"""
    )
    return cluster
