"""A real single-node Ceph cluster on 127.0.0.1 for the RBD driver's tests, CI and users.

Standard library only and independent of cindermesh, so any Python 3.11+ runs it.

Commands (``deploy/ceph/up``, ``deploy/ceph/down`` and ``deploy/ceph/bindings`` call this file)::

    deploy/ceph/up [STATE_DIR]
    deploy/ceph/down [STATE_DIR]
    deploy/ceph/bindings [--if-installed] [VENV]

``up`` installs Ceph from Debian's packages unless installed (:data:`PACKAGES`, one
``apt-get install --no-install-recommends``, under a machine-wide lock); bootstraps a cluster with
all its state in STATE_DIR (``$CEPH_STATE_DIR``, default ``<repo>/data/ceph``): one mon ``a`` on
a free port of 127.0.0.1 (msgr v2 only), one mgr ``x``, one OSD ``0`` on ``memstore``; creates the
pool ``volumes`` (``rbd pool init``) and the user ``client.cinder`` (``profile rbd pool=volumes``);
and waits until the pool's placement groups are active. It prints only::

    CEPH_CONF=<STATE_DIR>/ceph.conf
    CEPH_KEYRING=<STATE_DIR>/ceph.client.cinder.keyring
    CEPH_CLIENT=cinder
    CEPH_POOL=volumes

Everything else is in STATE_DIR: ``log/`` (one log per daemon, ``up.log`` with each command run
and the timings), ``run/`` (pid files, admin sockets), ``ceph.client.admin.keyring``, ``env``
(those lines). Run again, ``up`` reuses the running cluster; on a stopped one (after ``down``) it
starts the daemons again with their state (memstore saves the OSD's objects when it stops
cleanly, so a killed OSD comes back with those of its last clean stop; a restart that does not
become healthy within 45 s bootstraps afresh). ``down`` stops exactly the daemons ``up`` started
(their pid files), OSD first. A bootstrap takes about 10 s (mostly the mgr loading its Python
modules), a restart about 8 s, a ``down`` about 1 s.

``bindings`` makes Debian's ``rados`` and ``rbd`` modules (CPython 3.11 builds) importable in a
venv (default ``<repo>/.venv``) without the rest of ``/usr/lib/python3/dist-packages``: a
directory ``<repo>/.ceph-bindings`` of symlinks to just their ``.so`` files, named by a ``.pth``
file in the venv's site-packages.

From Python (a pytest fixture, a benchmark; ``deploy`` is a namespace package when the repository
root is on ``sys.path``)::

    from deploy.ceph.ceph_cluster import start_ceph, stop_ceph, install_bindings

    ceph = start_ceph(tmp_path / "ceph")  # installs Ceph on first use
    ceph.conf, ceph.keyring, ceph.client, ceph.pool  # what a client needs; ceph.env()
    ceph.ceph("df")  # the ceph CLI as client.admin (under timeout); ceph.rbd("ls", "volumes")
    ceph.stop_osd(); ceph.start_osd()  # fault tests: I/O to the pool blocks while it is down
    ceph.pause_osd(); ceph.resume_osd()  # SIGSTOP/SIGCONT: an OSD that hangs, still "up"
    ceph.pid("osd"), ceph.osd_running(), ceph.ceph_json("df"), ceph.mon_host, ceph.fsid
    install_bindings()  # then `import rados, rbd` in the venv (new interpreters)
    stop_ceph(ceph.state_dir)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENT",
    "PACKAGES",
    "POOL",
    "Ceph",
    "CephError",
    "bindings_dir",
    "ceph_installed",
    "install_bindings",
    "install_ceph",
    "main",
    "start_ceph",
    "stop_ceph",
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_STATE_DIR = REPO / "data" / "ceph"
DEFAULT_VENV = REPO / ".venv"
BINDINGS_DIR = REPO / ".ceph-bindings"
PTH_NAME = "cindermesh-ceph-bindings.pth"
#: In a state dir ``up`` made (it wipes no other directory).
MARKER = "cindermesh-ceph-state"
CONF_HEADER = "# Written by deploy/ceph/ceph_cluster.py"
#: Debian bookworm's Ceph 16.2.15: daemons, CLI and the Python bindings.
PACKAGES = ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph-common", "python3-rados", "python3-rbd")
BINDING_PACKAGES = ("python3-rados", "python3-rbd")
#: apt and dpkg are machine-wide, so is this lock.
INSTALL_LOCK = Path("/tmp/cindermesh-ceph-install.lock")
POOL = "volumes"
CLIENT = "cinder"
MON_ID = "a"
MGR_ID = "x"
OSD_ID = 0
PG_NUM = 8
#: Each ``ceph``/``rbd`` CLI call is killed after this long (mgr-only commands hang forever
#: without a mgr; any command hangs without a mon).
CLI_TIMEOUT = 30.0
DAEMONS = ("mon", "mgr", "osd")
#: Debian's mgr modules and the ones ours loads: Pacific's always-on modules, and iostat.
MGR_MODULE_DIR = Path("/usr/share/ceph/mgr")
MGR_MODULES = (
    "balancer", "crash", "devicehealth", "orchestrator", "pg_autoscaler", "progress",
    "rbd_support", "status", "telemetry", "volumes", "iostat", "mgr_module.py", "mgr_util.py",
)  # fmt: skip
#: Environment variables that would make Debian's Python (the mgr, the ceph CLI) load ours.
_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONNOUSERSITE")


class CephError(RuntimeError):
    """Ceph could not be installed, bootstrapped, started or asked."""


# --- installation -----------------------------------------------------------------------------


def _package_installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    return done.returncode == 0 and done.stdout.strip() == "install ok installed"


def ceph_installed(packages: tuple[str, ...] = PACKAGES) -> bool:
    """Whether all of ``packages`` are installed (and the daemons on the path)."""
    if shutil.which("dpkg-query") is None:
        return all(shutil.which(b) for b in ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph"))
    return all(_package_installed(p) for p in packages)


def install_ceph(log_path: Path | None = None, packages: tuple[str, ...] = PACKAGES) -> float:
    """Installs ``packages`` with apt (``--no-install-recommends``) unless installed; safe
    against a concurrent install (file lock). Returns the seconds the install took (0 if none)."""
    if ceph_installed(packages):
        return 0.0
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ceph_installed(packages):
            return 0.0
        if os.geteuid() != 0:
            raise CephError(f"Ceph is not installed; as root: apt-get install {' '.join(packages)}")
        log_path = log_path or Path("/tmp/cindermesh-ceph-install.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        started = time.monotonic()
        with open(log_path, "a") as log:
            command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
            if _run_logged(command, log, env, check=False) != 0:
                # Stale package lists (a fresh container): update once and try again.
                _run_logged(["apt-get", "update"], log, env)
                _run_logged(command, log, env)
            took = time.monotonic() - started
            log.write(f"# installed in {took:.1f} s\n")
        if not ceph_installed(packages):
            raise CephError(f"apt-get installed, yet {packages} are not all there: see {log_path}")
        return took


def _run_logged(
    command: list[str], log: Any, env: dict[str, str] | None = None, check: bool = True
) -> int:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    done = subprocess.run(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    if check and done.returncode != 0:
        raise CephError(f"{command[0]} {command[1]} failed ({done.returncode}): see {log.name}")
    return done.returncode


# --- Python bindings --------------------------------------------------------------------------


def bindings_dir() -> Path:
    """The directory of symlinks to Debian's ``rados``/``rbd`` modules (``$CEPH_BINDINGS_DIR``)."""
    return Path(os.environ.get("CEPH_BINDINGS_DIR") or BINDINGS_DIR)


def _binding_files() -> list[Path]:
    done = subprocess.run(
        ["dpkg", "-L", *BINDING_PACKAGES], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise CephError(f"dpkg -L {' '.join(BINDING_PACKAGES)}: {done.stderr.strip()}")
    files = [
        Path(line)
        for line in done.stdout.splitlines()
        if line.endswith(".so") and Path(line).name.split(".")[0] in ("rados", "rbd")
    ]
    if {f.name.split(".")[0] for f in files} != {"rados", "rbd"}:
        raise CephError(f"no rados/rbd modules in {BINDING_PACKAGES}: {files}")
    return files


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise CephError(f"{venv} is not a venv (no lib/python3*/site-packages)")
    return found[-1]


def install_bindings(venv: Path | str | None = None, install: bool = True) -> Path:
    """``rados`` and ``rbd`` importable in ``venv`` (default ``<repo>/.venv``; interpreters
    started afterwards): symlinks to just those ``.so`` files in :func:`bindings_dir`, and a
    ``.pth`` naming it in the venv's site-packages. Installs the two packages first (when
    ``install``). Idempotent; returns the bindings directory. Within a running interpreter, also
    ``sys.path.append(str(install_bindings()))`` (the ``.pth`` is read at start-up only)."""
    if install:
        install_ceph(packages=BINDING_PACKAGES)
    target = bindings_dir()
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = {f.name: f for f in _binding_files()}
        for entry in target.iterdir():
            if entry.is_symlink() and entry.name not in wanted:
                entry.unlink()
        for name, source in wanted.items():
            link = target / name
            if link.is_symlink() and os.readlink(link) == str(source):
                continue
            tmp = target / f".{name}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(source)
            tmp.replace(link)
        site = _site_packages(Path(venv or os.environ.get("CEPH_BINDINGS_VENV") or DEFAULT_VENV))
        tag = "cpython-" + site.parent.name.removeprefix("python").replace(".", "")
        if not all(f".{tag}-" in name for name in wanted):
            raise CephError(f"Debian's bindings {sorted(wanted)} are not for {site.parent.name}")
        pth = site / PTH_NAME
        line = f"{target}\n"
        if not pth.exists() or pth.read_text() != line:
            pth.write_text(line)
    return target


# --- the cluster ------------------------------------------------------------------------------


def _config(state: Path, fsid: str, port: int) -> str:
    return f"""{CONF_HEADER}: a single-node test cluster, all state here.
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{port}]
mon initial members = {MON_ID}
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = {state}/run
crash dir = {state}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = {PG_NUM}
osd pool default pgp num = {PG_NUM}
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon pg warn min per osd = 0
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.1
mgr stats period = 1
mon mgr digest period = 1
mgr initial modules = iostat

# Each daemon its own keyring (a global admin keyring makes the OSD fail auth).
[mon]
mon data = {state}/mon/$id
keyring = {state}/mon/$id/keyring
log file = {state}/log/$name.log
mon cluster log file = {state}/log/cluster.log

[mgr]
mgr data = {state}/mgr/$id
# Only the modules it needs (it loads every one it finds: about 0.5 s each on a busy machine).
mgr module path = {state}/mgr-modules
keyring = {state}/mgr/$id/keyring
log file = {state}/log/$name.log

[osd]
osd data = {state}/osd/$id
keyring = {state}/osd/$id/keyring
log file = {state}/log/$name.log
osd objectstore = memstore
# Stopping cleanly unmounts the store, so memstore saves its objects (fast shutdown skips that).
osd fast shutdown = false
memstore device bytes = 4294967296
osd min pg log entries = 100
osd max pg log entries = 500
osd pg log trim min = 50

[client]
keyring = {state}/ceph.$name.keyring
"""


def _proc_state(pid: int) -> str | None:
    """The process's state letter from ``/proc/PID/stat`` (None if gone). A killed daemon that
    PID 1 has not reaped yet is ``Z``: ``kill -0`` would call it alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _alive(pid: int, conf: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) daemon of the cluster configured by ``conf``."""
    if _proc_state(pid) in (None, "Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(conf).encode() in cmdline.split(b"\0")


def _exited(pid: int, conf: Path) -> bool:
    """Whether every thread of daemon ``pid`` has exited. A zombie leader (``Z``) may still have
    threads winding down that hold its sockets and files; PID 1 here also reaps late."""
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if cmdline and str(conf).encode() not in cmdline.split(b"\0"):
            return True  # reaped, and the pid is another process's now
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] not in ("Z", "X"):
            return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _daemon_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PYTHON_VARS}
    env["MALLOC_ARENA_MAX"] = "2"
    env.pop("CEPH_ARGS", None)
    return env


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in (6789, 3300):
            return port


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Ceph:
    """A running cluster started by :func:`start_ceph`."""

    state_dir: Path
    port: int
    fsid: str
    client: str = CLIENT
    pool: str = POOL
    #: Seconds this start took: bootstrap or restart (0.0 when it found the cluster running).
    start_seconds: float = 0.0
    #: Seconds the apt install took (0.0 when Ceph was installed already).
    install_seconds: float = 0.0

    @property
    def conf(self) -> Path:
        return self.state_dir / "ceph.conf"

    @property
    def keyring(self) -> Path:
        """The cindermesh client's (``client.cinder``) keyring."""
        return self.state_dir / f"ceph.client.{self.client}.keyring"

    @property
    def admin_keyring(self) -> Path:
        return self.state_dir / "ceph.client.admin.keyring"

    @property
    def mon_host(self) -> str:
        return f"[v2:127.0.0.1:{self.port}]"

    def env(self) -> dict[str, str]:
        """What ``up`` prints: the ``CEPH_*`` a client needs."""
        return {
            "CEPH_CONF": str(self.conf),
            "CEPH_KEYRING": str(self.keyring),
            "CEPH_CLIENT": self.client,
            "CEPH_POOL": self.pool,
        }

    def ceph(self, *args: str, client: str = "admin", timeout: float = CLI_TIMEOUT) -> str:
        """The ``ceph`` CLI's output (as ``client.<client>``, under ``timeout``)."""
        return _cli(self.state_dir, "ceph", args, client, timeout)

    def ceph_json(self, *args: str, client: str = "admin", timeout: float = CLI_TIMEOUT) -> Any:
        return json.loads(self.ceph(*args, "--format", "json", client=client, timeout=timeout))

    def rbd(self, *args: str, client: str = CLIENT, timeout: float = CLI_TIMEOUT) -> str:
        """The ``rbd`` CLI's output, as the cindermesh client by default."""
        return _cli(self.state_dir, "rbd", args, client, timeout)

    def pid(self, daemon: str) -> int | None:
        """The running ``mon``/``mgr``/``osd``'s pid (None if not running)."""
        return _running_pid(self.state_dir, daemon)

    def osd_running(self) -> bool:
        return self.pid("osd") is not None

    def stop_osd(self, timeout: float = 30.0) -> None:
        """Stops the OSD cleanly (SIGTERM: it tells the mon it goes down and memstore saves its
        objects) and waits until the mon counts it down. Until :meth:`start_osd`, I/O to the pool
        blocks (librados waits for the OSD; ``rados_osd_op_timeout`` bounds that)."""
        with _locked(self.state_dir):
            _stop_daemon(self.state_dir, "osd", timeout)
            _wait(
                lambda: _osds_up(self.state_dir) == 0,
                timeout,
                "the mon to count the OSD down",
                self.state_dir,
            )

    def start_osd(self, timeout: float = 60.0) -> None:
        """Starts the OSD again (if stopped) and waits until the pool's PGs are active."""
        with _locked(self.state_dir):
            if _running_pid(self.state_dir, "osd") is None:
                _start_daemon(self.state_dir, "osd")
            _wait_ready(self.state_dir, timeout)

    def pause_osd(self) -> None:
        """Freezes the OSD (SIGSTOP): an unresponsive OSD the mon still counts up, for a while."""
        pid = self.pid("osd")
        if pid is None:
            raise CephError("the OSD is not running")
        os.kill(pid, signal.SIGSTOP)

    def resume_osd(self) -> None:
        """Lets a paused OSD run again (SIGCONT)."""
        pid = self.pid("osd")
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


def _state_dir(state_dir: Path | str | None) -> Path:
    return Path(state_dir or os.environ.get("CEPH_STATE_DIR") or DEFAULT_STATE_DIR).resolve()


def _cli_command(state: Path, tool: str, args: tuple[str, ...] | list[str], client: str,
                 timeout: float) -> list[str]:  # fmt: skip
    return [
        "timeout",
        "-k",
        "5",
        f"{timeout:g}",
        tool,
        "--conf",
        str(state / "ceph.conf"),
        "--id",
        client,
        *args,
    ]


def _cli(
    state: Path, tool: str, args: tuple[str, ...] | list[str], client: str, timeout: float
) -> str:
    command = _cli_command(state, tool, args, client, timeout)
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_daemon_env(),
    )
    if done.returncode != 0:
        why = "timed out" if done.returncode in (124, 137) else f"failed ({done.returncode})"
        raise CephError(f"{tool} {' '.join(args)} {why}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _log(state: Path, line: str) -> None:
    (state / "log").mkdir(parents=True, exist_ok=True)
    with open(state / "log" / "up.log", "a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def _step(state: Path, command: list[str], timeout: float = CLI_TIMEOUT) -> str:
    """Runs a bootstrap command (under ``timeout``), logged to ``log/up.log``."""
    _log(state, "$ " + " ".join(command))
    done = subprocess.run(
        ["timeout", "-k", "5", f"{timeout:g}", *command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_daemon_env(),
    )
    with open(state / "log" / "up.log", "a") as log:
        log.write(done.stdout + done.stderr)
    if done.returncode != 0:
        raise CephError(
            f"{' '.join(command[:3])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            f" (see {state / 'log' / 'up.log'})"
        )
    return done.stdout


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _pid_file(state: Path, daemon: str) -> Path:
    return state / "run" / f"{daemon}.pid"


def _running_pid(state: Path, daemon: str) -> int | None:
    try:
        pid = int(_pid_file(state, daemon).read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, state / "ceph.conf") else None


def _daemon_command(state: Path, daemon: str) -> list[str]:
    ident = {"mon": MON_ID, "mgr": MGR_ID, "osd": str(OSD_ID)}[daemon]
    # -f: in the foreground (so the pid is ours); its log goes to log/<daemon>.<id>.log.
    return [f"ceph-{daemon}", "-f", "--conf", str(state / "ceph.conf"), "--id", ident]


def _mgr_modules(state: Path) -> None:
    """``mgr-modules/``: symlinks to just :data:`MGR_MODULES` of Debian's (all, if unknown)."""
    target = state / "mgr-modules"
    target.mkdir(exist_ok=True)
    available = {p.name for p in MGR_MODULE_DIR.iterdir()} if MGR_MODULE_DIR.is_dir() else set()
    wanted = [m for m in MGR_MODULES if m in available]
    if len(wanted) != len(MGR_MODULES):
        wanted = sorted(available)  # another Ceph release: its own set
    for name in wanted:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(MGR_MODULE_DIR / name)


def _start_daemon(state: Path, daemon: str) -> int:
    if daemon == "mgr":
        _mgr_modules(state)
    command = _daemon_command(state, daemon)
    _log(state, "$ " + " ".join(command) + " &")
    (state / "run").mkdir(parents=True, exist_ok=True)
    out = open(state / "log" / f"{daemon}.out", "a")  # noqa: SIM115 (the daemon keeps it)
    process = subprocess.Popen(
        command,
        cwd=state,
        env=_daemon_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    _pid_file(state, daemon).write_text(f"{process.pid}\n")
    return process.pid


def _stop_daemon(state: Path, daemon: str, timeout: float = 30.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; False if it was not running."""
    pid = _running_pid(state, daemon)
    if pid is None:
        _pid_file(state, daemon).unlink(missing_ok=True)
        return False
    _log(state, f"stopping {daemon} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)  # if paused
        os.kill(pid, signal.SIGTERM)
    conf = state / "ceph.conf"
    deadline = time.monotonic() + timeout
    while _alive(pid, conf) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid, conf):
        _log(state, f"{daemon} (pid {pid}) ignored SIGTERM for {timeout:g} s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _exited(pid, conf) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    _reap(pid)
    _pid_file(state, daemon).unlink(missing_ok=True)
    return True


def _wait(check: Any, timeout: float, what: str, state: Path) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except CephError as error:
            last = error
        time.sleep(0.1)
    raise CephError(f"timed out after {timeout:g} s waiting for {what}: {last} (see {state}/log)")


def _status(state: Path) -> dict[str, Any]:
    out = _cli(state, "ceph", ["status", "--format", "json"], "admin", 10)
    status: dict[str, Any] = json.loads(out)
    return status


def _osds_up(state: Path) -> int:
    out = _cli(state, "ceph", ["osd", "stat", "--format", "json"], "admin", 10)
    return int(json.loads(out).get("num_up_osds", 0))


def _ready(state: Path) -> bool:
    """The OSD up and in (the mon's map), the mgr available and every PG active and not stale
    (the mgr's fresh view: ``ceph -s`` may show the digest of before a restart)."""
    for daemon in DAEMONS:
        if _running_pid(state, daemon) is None:
            raise CephError(f"ceph-{daemon} is not running: see {state}/log/{daemon}.*")
    osds = json.loads(_cli(state, "ceph", ["osd", "stat", "--format", "json"], "admin", 10))
    if osds.get("num_up_osds") != 1 or osds.get("num_in_osds") != 1:
        return False
    mgr = json.loads(_cli(state, "ceph", ["mgr", "stat", "--format", "json"], "admin", 10))
    if not mgr.get("available"):
        return False
    pgs = json.loads(_cli(state, "ceph", ["pg", "stat", "--format", "json"], "admin", 10))
    summary = pgs.get("pg_summary", pgs)
    total = int(summary.get("num_pgs", 0))
    good = sum(
        int(s["num"])
        for s in summary.get("num_pg_by_state", [])
        if "active" in s["name"].split("+") and "stale" not in s["name"].split("+")
    )
    return total > 0 and good == total


def _wait_ready(state: Path, timeout: float) -> None:
    _wait(lambda: _ready(state), timeout, "the cluster (OSD up, mgr, PGs active)", state)


def _keyring(state: Path, path: Path, name: str, caps: dict[str, str]) -> None:
    command = ["ceph-authtool", "--create-keyring", str(path), "--gen-key", "-n", name]
    for kind, cap in caps.items():
        command += ["--cap", kind, cap]
    _step(state, command)
    path.chmod(0o600)


def _wipe(state: Path) -> None:
    """Everything but the logs (a failed or lost bootstrap starts over)."""
    for entry in state.iterdir():
        if entry.name in ("log", "up.lock", MARKER):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _bootstrap(state: Path, port: int) -> str:
    """A new cluster in ``state``: keyrings, monmap, mon, OSD, mgr, pool, client. The fsid."""
    _wipe(state)
    for sub in ("log", "run", "crash", "bootstrap", f"mon/{MON_ID}", f"mgr/{MGR_ID}",
                f"osd/{OSD_ID}"):  # fmt: skip
        (state / sub).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(state / "mon" / MON_ID)  # ceph-mon --mkfs makes it
    fsid = str(uuid.uuid4())
    conf = state / "ceph.conf"
    conf.write_text(_config(state, fsid, port))
    boot = state / "bootstrap"
    mon_keyring = boot / "mon.keyring"
    _keyring(state, mon_keyring, "mon.", {"mon": "allow *"})
    keyrings = {
        state / "ceph.client.admin.keyring": (
            "client.admin",
            {"mon": "allow *", "osd": "allow *", "mds": "allow *", "mgr": "allow *"},
        ),
        state / "osd" / str(OSD_ID) / "keyring": (
            f"osd.{OSD_ID}",
            {"mon": "allow profile osd", "mgr": "allow profile osd", "osd": "allow *"},
        ),
        state / "mgr" / MGR_ID / "keyring": (
            f"mgr.{MGR_ID}",
            {"mon": "allow profile mgr", "osd": "allow *", "mds": "allow *"},
        ),
    }
    for path, (name, caps) in keyrings.items():
        _keyring(state, path, name, caps)
        _step(state, ["ceph-authtool", str(mon_keyring), "--import-keyring", str(path)])
    monmap = boot / "monmap"
    _step(state, ["monmaptool", "--create", "--fsid", fsid, "--addv", MON_ID,
                  f"[v2:127.0.0.1:{port}]", str(monmap)])  # fmt: skip
    _step(state, ["ceph-mon", "--conf", str(conf), "--mkfs", "--id", MON_ID, "--monmap",
                  str(monmap), "--keyring", str(mon_keyring)])  # fmt: skip
    (state / "port").write_text(f"{port}\n")
    _start_daemon(state, "mon")
    _start_daemon(state, "mgr")  # the slowest to start (its Python modules): early
    _wait(lambda: _status(state) is not None, 30, "the mon", state)
    osd_uuid = str(uuid.uuid4())
    admin = ["ceph", "--conf", str(conf), "--id", "admin"]
    _step(state, [*admin, "osd", "new", osd_uuid, str(OSD_ID)])
    _step(state, ["ceph-osd", "--conf", str(conf), "--id", str(OSD_ID), "--mkfs",
                  "--osd-uuid", osd_uuid])  # fmt: skip
    _start_daemon(state, "osd")
    _wait(lambda: _osds_up(state) == 1, 60, "the OSD to boot", state)
    _step(state, [*admin, "osd", "pool", "create", POOL, str(PG_NUM), str(PG_NUM)])
    _step(state, [*admin, "osd", "pool", "set", POOL, "size", "1", "--yes-i-really-mean-it"])
    _step(state, ["rbd", "--conf", str(conf), "--id", "admin", "pool", "init", POOL], 60)
    _step(state, [*admin, "auth", "get-or-create", f"client.{CLIENT}", "mon", "profile rbd",
                  "osd", f"profile rbd pool={POOL}", "mgr", f"profile rbd pool={POOL}",
                  "-o", str(state / f"ceph.client.{CLIENT}.keyring")])  # fmt: skip
    (state / f"ceph.client.{CLIENT}.keyring").chmod(0o600)
    (state / "fsid").write_text(f"{fsid}\n")
    shutil.rmtree(boot)
    (state / "bootstrap.done").write_text(f"{fsid}\n")
    return fsid


def start_ceph(
    state_dir: Path | str | None = None, timeout: float = 120.0, install: bool = True
) -> Ceph:
    """The cluster running with its state in ``state_dir`` (installed, bootstrapped or restarted
    as needed; see the module docstring). Reuses a cluster already running there."""
    state = _state_dir(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    if not (state / MARKER).exists():
        # A (re)bootstrap wipes the directory: never one that holds anything else.
        conf = state / "ceph.conf"
        ours = conf.exists() and conf.read_text().startswith(CONF_HEADER)
        if any(state.iterdir()) and not ours:
            raise CephError(f"{state} is not empty and not a Ceph state dir of deploy/ceph")
        (state / MARKER).write_text("state of deploy/ceph/ceph_cluster.py; up wipes it\n")
    (state / "log").mkdir(exist_ok=True)
    install_seconds = install_ceph(state / "log" / "install.log") if install else 0.0
    if install_seconds:
        _log(state, f"installed Ceph in {install_seconds:.1f} s")
    with _locked(state):
        started = time.monotonic()
        done = (state / "bootstrap.done").exists()
        running = [d for d in DAEMONS if _running_pid(state, d) is not None]
        if done and len(running) == len(DAEMONS):
            port = int((state / "port").read_text())
            fsid = (state / "fsid").read_text().strip()
            _wait_ready(state, timeout)
            return Ceph(state, port, fsid, install_seconds=install_seconds)
        if done:
            port = int((state / "port").read_text())
            fsid = (state / "fsid").read_text().strip()
            try:
                if "mon" not in running and not _port_free(port):
                    raise CephError(f"the mon's port {port} is taken")
                for daemon in DAEMONS:
                    if daemon not in running:
                        _start_daemon(state, daemon)
                _wait_ready(state, min(timeout, 45.0))
                took = time.monotonic() - started
                _log(state, f"restarted in {took:.2f} s")
                return Ceph(state, port, fsid, start_seconds=took,
                            install_seconds=install_seconds)  # fmt: skip
            except CephError as error:
                # E.g. an OSD killed without saving its memstore: start over.
                _log(state, f"restart failed ({error}); bootstrapping afresh")
                for daemon in reversed(DAEMONS):
                    _stop_daemon(state, daemon, 10)
                started = time.monotonic()
        for daemon in reversed(DAEMONS):
            _stop_daemon(state, daemon, 10)
        port = _free_port()
        try:
            fsid = _bootstrap(state, port)
            _wait_ready(state, timeout)
        except BaseException:
            for daemon in ("osd", "mgr", "mon"):
                _stop_daemon(state, daemon, 10)
            raise
        took = time.monotonic() - started
        _log(state, f"bootstrapped in {took:.2f} s")
        (state / "env").write_text("".join(f"{k}={v}\n" for k, v in
                                           Ceph(state, port, fsid).env().items()))  # fmt: skip
        return Ceph(state, port, fsid, start_seconds=took, install_seconds=install_seconds)


def stop_ceph(state_dir: Path | str | None = None, timeout: float = 30.0) -> bool:
    """Stops the daemons ``up`` started in ``state_dir`` (OSD, mgr, mon); False if none ran.
    The state stays: :func:`start_ceph` starts them again with it."""
    state = _state_dir(state_dir)
    if not state.exists():
        return False
    with _locked(state):
        stopped = [_stop_daemon(state, daemon, timeout) for daemon in ("osd", "mgr", "mon")]
    return any(stopped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ceph_cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="install (once), bootstrap or restart the cluster")
    up.add_argument("state_dir", nargs="?", help="default $CEPH_STATE_DIR or data/ceph")
    down = commands.add_parser("down", help="stop the daemons up started")
    down.add_argument("state_dir", nargs="?")
    bindings = commands.add_parser("bindings", help="rados and rbd importable in a venv")
    bindings.add_argument("venv", nargs="?", help="default $CEPH_BINDINGS_VENV or <repo>/.venv")
    bindings.add_argument(
        "--if-installed",
        action="store_true",
        help="only if Debian's python3-rados and python3-rbd are installed (never runs apt)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            ceph = start_ceph(args.state_dir)
            sys.stdout.write("".join(f"{k}={v}\n" for k, v in ceph.env().items()))
        elif args.command == "down":
            stop_ceph(args.state_dir)
        elif args.if_installed and not ceph_installed(BINDING_PACKAGES):
            print("ceph bindings: python3-rados, python3-rbd not installed", file=sys.stderr)
        else:
            print(install_bindings(args.venv, install=not args.if_installed))
    except CephError as error:
        print(f"ceph {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
