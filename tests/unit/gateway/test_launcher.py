"""``cindermesh up`` as a real process tree: fake services (shadowing ``services``), real Envoy."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.unit.gateway.conftest import free_port

FAKE_SERVICES = Path(__file__).parent / "fake_services"
REPO = Path(__file__).resolve().parents[3]


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
    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CINDERMESH_"))}
        env["CINDERMESH_CONFIG"] = str(_config(tmp_path))
        env["PYTHONPATH"] = f"{FAKE_SERVICES}{os.pathsep}{REPO}"
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

    def wait_up(self, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if match := re.match(r"cindermesh is up: REST (\S+)", line):
                return match.group(1)
        raise AssertionError("not up:\n" + "".join(self.lines))

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        out, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, "".join(self.lines) + out

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for line in self.lines:
            if match := re.match(r"\[(\S+)\] fake serving on \S+ pid (\d+)", line):
                found[match.group(1)] = int(match.group(2))
        return found


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


def test_up_serves_rest_traces_and_stops_cleanly(up: Up) -> None:
    rest = up.wait_up()
    banner = "".join(up.lines)
    assert "cindermesh trace <request-id>" in banner
    assert str(up.data_dir) in banner
    response = httpx.post(f"{rest}/volumes", json={"volume": {"size": 1}}, timeout=5)
    assert response.status_code == 202
    request_id = response.headers["x-openstack-request-id"]
    pids = up.pids()
    assert set(pids) == {"scheduler", "volume:file-1", "volume:file-2", "api"}

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
    assert all(_gone(pid) for pid in pids.values())
    assert (up.data_dir / "envoy.yaml").exists()
    assert (up.data_dir / "logs" / "api.log").read_text().startswith("fake serving")


def test_a_dying_child_stops_everything(up: Up) -> None:
    up.wait_up()
    pids = up.pids()
    os.kill(pids["volume:file-2"], signal.SIGKILL)
    code, output = up.finish()
    assert code != 0
    assert "volume:file-2 exited" in output
    assert all(_gone(pid) for pid in pids.values())
