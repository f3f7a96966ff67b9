"""``cindermesh up`` as a real process tree: fake services (shadowing ``services``), real Envoy;
and the launcher's pure parts (backoff, pid file names, port holders, the run-dir lock)."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cindermesh.launcher import (
    Backoff,
    LaunchRefusedError,
    PortHolder,
    RunDir,
    check_ports_distinct,
    check_ports_free,
    listening_inodes,
    pid_file_name,
    planned_ports,
    port_holders,
)
from cindermesh.settings import (
    ApiSettings,
    BackendSettings,
    GatewaySettings,
    SchedulerSettings,
    Settings,
)
from tests.unit.gateway.conftest import free_port

FAKE_SERVICES = Path(__file__).parent / "fake_services"
REPO = Path(__file__).resolve().parents[3]
CHILDREN = ("scheduler", "volume:file-1", "volume:file-2", "api", "gateway")


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "cindermesh.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"

[gateway]
port = {free_port()}
admin_port = {free_port()}
concurrency = 1

[api]
port = {free_port()}

[scheduler]
port = {free_port()}

[[backends]]
name = "file-1"
port = {free_port()}

[[backends]]
name = "file-2"
port = {free_port()}
"""
    )
    return config


class Up:
    """One ``cindermesh up`` process; a thread collects its output lines."""

    def __init__(self, tmp_path: Path, services: Path = FAKE_SERVICES) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CINDERMESH_"))}
        env["CINDERMESH_CONFIG"] = str(_config(tmp_path))
        env["PYTHONPATH"] = f"{services}{os.pathsep}{REPO}"
        env["CI"] = "true"
        self.data_dir = tmp_path / "data"
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cindermesh.cli", "up"],
            cwd=tmp_path,  # so that the fake ``services`` package wins over the real one
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30, start: int = 0) -> re.Match[str]:
        """The first output line from ``start`` on matching ``pattern``, waiting ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if match := re.search(pattern, line):
                    return match
            if not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output()}")

    def wait_up(self, timeout: float = 60) -> str:
        return self.wait_for(r"cindermesh is up: REST (\S+)", timeout).group(1)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return code, self.output()

    def pid(self, name: str) -> int:
        return int((self.data_dir / "run" / pid_file_name(name)).read_text())

    def pids(self) -> dict[str, int]:
        return {name: self.pid(name) for name in CHILDREN}


@pytest.fixture()
def up(tmp_path: Path) -> Iterator[Up]:
    launched = Up(tmp_path)
    yield launched
    if launched.process.poll() is None:
        launched.process.kill()
        launched.process.wait()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not _gone(p)]}"
        time.sleep(0.05)


def test_up_serves_rest_traces_and_stops_cleanly(up: Up) -> None:
    rest = up.wait_up()
    banner = up.output()
    assert "cindermesh trace <request-id>" in banner
    assert str(up.data_dir) in banner
    response = httpx.post(f"{rest}/volumes", json={"volume": {"size": 1}}, timeout=5)
    assert response.status_code == 202
    request_id = response.headers["x-openstack-request-id"]
    pids = up.pids()
    for name in ("scheduler", "volume:file-1", "volume:file-2", "api"):
        assert f"[{name}] fake serving on" in banner and f"pid {pids[name]}" in banner
    assert int((up.data_dir / "run" / "launcher.pid").read_text()) == up.process.pid

    sink = up.data_dir / "traces" / "otlp-sink.jsonl"
    deadline = time.monotonic() + 15
    while request_id not in (sink.read_text() if sink.exists() else ""):
        assert time.monotonic() < deadline, "Envoy's span never reached the sink"
        time.sleep(0.2)
    trace = subprocess.run(
        [sys.executable, "-m", "cindermesh.cli", "trace", request_id],
        env=up.env, cwd=up.data_dir.parent, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert trace.returncode == 0, trace.stderr
    assert "cindermesh-gateway" in trace.stdout

    up.process.send_signal(signal.SIGTERM)
    code, output = up.finish()
    assert code == 0, output
    assert "cindermesh: stopped" in output
    assert "restart" not in output
    assert all(_gone(pid) for pid in pids.values())
    assert sorted(p.name for p in (up.data_dir / "run").iterdir()) == ["launcher.lock"]
    assert (up.data_dir / "envoy.yaml").exists()
    assert (up.data_dir / "logs" / "api.log").read_text().startswith("fake serving")


def _kill_and_wait_restart(up: Up, name: str, delay: str) -> int:
    """SIGKILLs ``name`` by its pid file; returns the pid of the restarted child."""
    old = up.pid(name)
    before = len(up.lines)
    os.kill(old, signal.SIGKILL)
    exited = f"cindermesh: {name} exited with status -9; restarting in {delay} s"
    restarted = up.wait_for(rf"cindermesh: {re.escape(name)} restarted \(pid (\d+)\)", start=before)
    assert exited in "".join(up.lines[before:]), up.output()
    new = int(restarted.group(1))
    assert new != old and up.pid(name) == new and not _gone(new)
    return new


def test_a_killed_child_is_restarted_with_backoff(up: Up) -> None:
    rest = up.wait_up()
    first = up.pids()
    _kill_and_wait_restart(up, "volume:file-2", "0.25")
    _kill_and_wait_restart(up, "volume:file-2", "0.5")
    _kill_and_wait_restart(up, "gateway", "0.25")
    response = httpx.post(f"{rest}/volumes", json={"volume": {"size": 1}}, timeout=5)
    assert response.status_code == 202
    now = up.pids()
    assert {n for n in CHILDREN if now[n] != first[n]} == {"volume:file-2", "gateway"}

    up.process.send_signal(signal.SIGTERM)
    code, output = up.finish()
    assert code == 0, output
    assert all(_gone(pid) for pid in [*first.values(), *now.values()])


def test_a_startup_failure_exits_1_without_restarting(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "services").mkdir(parents=True)
    (broken / "services" / "__init__.py").write_text("")  # no services.scheduler: it dies
    launched = Up(tmp_path, services=broken)
    code, output = launched.finish()
    assert code == 1, output
    assert "cindermesh: startup failed: scheduler exited with status 1" in output
    assert "restart" not in output


def test_a_launcher_killed_with_sigkill_takes_its_children_along(up: Up) -> None:
    up.wait_up()
    pids = up.pids()
    up.process.kill()
    up.finish()
    _wait_gone(list(pids.values()))


def test_backoff_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.25, maximum=5.0, reset_after=30.0)
    assert [backoff.delay(healthy_for=1.0) for _ in range(8)] == [
        0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0,
    ]  # fmt: skip


def test_backoff_starts_over_once_the_child_stayed_healthy_long_enough() -> None:
    backoff = Backoff(initial=0.25, maximum=5.0, reset_after=30.0)
    assert [backoff.delay(0.0), backoff.delay(29.0), backoff.delay(0.0)] == [0.25, 0.5, 1.0]
    assert [backoff.delay(30.0), backoff.delay(0.0)] == [0.25, 0.5]


def test_pid_file_names_are_safe() -> None:
    assert [pid_file_name(n) for n in ("scheduler", "volume:file-1", "api", "gateway")] == [
        "scheduler.pid", "volume-file-1.pid", "api.pid", "gateway.pid",
    ]  # fmt: skip


def _cmdline(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return " ".join(part.decode() for part in raw.split(b"\0") if part)


def test_port_holders_finds_this_process_listening() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert port_holders(port) == []  # bound but not listening
        listener.listen()
        assert len(listening_inodes(port)) == 1
        assert port_holders(port) == [PortHolder(os.getpid(), _cmdline(os.getpid()))]
    assert port_holders(port) == []


def test_port_holders_finds_another_process_on_ipv6() -> None:
    script = (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_INET6); s.bind(('::1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        # Another process may hold the same number on IPv4 (a test run alongside): it holds
        # the port too, so it is listed with the child, never instead of it.
        (holder,) = [h for h in port_holders(port) if h.pid == child.pid]
        assert holder.cmdline.startswith(f"{sys.executable} -c import socket")
    finally:
        child.kill()
        child.wait()


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        gateway=GatewaySettings(port=free_port(), admin_port=free_port()),
        api=ApiSettings(port=free_port()),
        scheduler=SchedulerSettings(port=free_port()),
        backends=(BackendSettings(name="file-1", port=free_port()),),
    )


def test_check_ports_free_names_the_port_its_use_and_its_holder(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert [p.port for p in planned_ports(settings)] == [
        settings.gateway.port, settings.gateway.admin_port, settings.api.port,
        settings.scheduler.port, settings.backends[0].port,
    ]  # fmt: skip
    check_ports_free(settings)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        taken = dataclasses.replace(settings, backends=(BackendSettings(name="file-1", port=port),))
        with pytest.raises(LaunchRefusedError) as refused:
            check_ports_free(taken)
    message = str(refused.value)
    assert (
        f"port {port} on 127.0.0.1, for the volume manager of file-1, is already in use" in message
    )
    assert f"held by pid {os.getpid()} ({_cmdline(os.getpid())})" in message


def test_a_second_lock_on_the_run_dir_is_refused_naming_the_pid(tmp_path: Path) -> None:
    first, second = RunDir(tmp_path / "run"), RunDir(tmp_path / "run")
    first.lock()
    try:
        assert (tmp_path / "run" / "launcher.pid").read_text() == f"{os.getpid()}\n"
        with pytest.raises(LaunchRefusedError, match=rf"another launcher \(pid {os.getpid()}\)"):
            second.lock()
    finally:
        first.release()
    assert not (tmp_path / "run" / "launcher.pid").exists()
    second.lock()
    second.release()


def test_api_replicas_listen_on_port_plus_i_and_a_port_planned_twice_is_refused(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    replicated = dataclasses.replace(
        settings,
        api=ApiSettings(port=20000, replicas=3),
        scheduler=SchedulerSettings(port=20010, replicas=2),
    )
    planned = {p.port: p.purpose for p in planned_ports(replicated)}
    assert planned[20000] == "the api service"
    assert planned[20002] == "the api service (replica 2)"
    assert planned[20011] == "the scheduler service (replica 1)"
    check_ports_distinct(replicated)
    overlapping = dataclasses.replace(
        replicated, scheduler=SchedulerSettings(port=20002, replicas=2)
    )
    with pytest.raises(LaunchRefusedError) as refused:
        check_ports_distinct(overlapping)
    assert "port 20002 is planned for both the api service (replica 2) and the scheduler" in str(
        refused.value
    )
