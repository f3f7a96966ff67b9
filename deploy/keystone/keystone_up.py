"""A real Keystone on 127.0.0.1 for tests, CI and users: install, start, bootstrap, stop.

Standard library only and independent of cindermesh, so any Python 3.11+ runs it.

Commands (``deploy/keystone/up`` and ``deploy/keystone/down`` call this file)::

    deploy/keystone/up [STATE_DIR] [--port N] [--cinder-url http://127.0.0.1:8776]
    deploy/keystone/down [STATE_DIR]

``up`` installs Keystone (``KEYSTONE_VERSION``) and gunicorn with one pip install into
``<repo>/.venv-keystone`` (``$KEYSTONE_VENV``) under ``deploy/openstack-constraints.txt``,
unless already there; writes ``keystone.conf`` (SQLite, ``password_hash_rounds = 4``) into
STATE_DIR (``$KEYSTONE_STATE_DIR``, default ``<repo>/data/keystone``); runs ``db_sync``,
``fernet_setup``, ``credential_setup`` and ``bootstrap`` (user ``admin`` in project ``admin``,
region ``RegionOne``, the identity endpoints); starts gunicorn with one worker and one thread
on the port (``$KEYSTONE_PORT``, else the last one used, else a free one); waits until Keystone
answers; creates the service user ``cinder`` (project ``service``, roles ``admin`` and
``service``); and, given ``--cinder-url`` (``$KEYSTONE_CINDER_URL``), registers the volume
service in the catalog (``cinderv3``/``volumev3`` and ``cinder``/``block-storage``, public,
internal and admin endpoints ``<url>/v3/%(project_id)s``). It prints only::

    OS_AUTH_URL=http://127.0.0.1:<port>/v3
    OS_USERNAME=admin
    OS_PASSWORD=...
    OS_PROJECT_NAME=admin
    OS_USER_DOMAIN_NAME=Default
    OS_PROJECT_DOMAIN_NAME=Default

Everything else is in STATE_DIR: ``keystone.log``, ``gunicorn.log``, ``install.log``,
``keystone.pid``, ``openrc`` (those lines as exports) and ``cindermesh-keystone.toml`` (the
``[api]`` and ``[keystone_authtoken]`` sections for cindermesh, with the service user). Run again,
``up`` reuses the running Keystone. ``down`` stops exactly the process ``up`` started.

From Python (e.g. a Tempest runner or a pytest fixture; ``deploy`` is a namespace package when
the repository root is on ``sys.path``)::

    from deploy.keystone.keystone_up import start_keystone, stop_keystone

    keystone = start_keystone(tmp_path / "keystone")  # installs on first use
    keystone.auth_url, keystone.admin_password, keystone.env()  # OS_* variables
    keystone.register_volume_service("http://127.0.0.1:8776")
    admin = keystone.admin()  # a small Identity v3 client (admin token)
    project_id = admin.ensure_project("demo")
    admin.ensure_user("alice", "secret", project_id, roles=("member",))
    token = keystone.issue_token("alice", "secret", "demo")
    print(keystone.authtoken_toml())  # cindermesh's [api] + [keystone_authtoken]
    stop_keystone(keystone.state_dir)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KEYSTONE_VERSION",
    "IdentityClient",
    "Keystone",
    "install_keystone",
    "main",
    "start_keystone",
    "stop_keystone",
]

KEYSTONE_VERSION = "30.0.0"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONSTRAINTS = REPO / "deploy" / "openstack-constraints.txt"
DEFAULT_VENV = REPO / ".venv-keystone"
DEFAULT_STATE_DIR = REPO / "data" / "keystone"
#: Written into the venv once its install finished (a half-done install is done again).
INSTALLED_MARK = "cindermesh-keystone-installed"
REGION = "RegionOne"
SERVICE_USER = "cinder"
SERVICE_PROJECT = "service"
PID_FILE = "keystone.pid"


class KeystoneError(RuntimeError):
    """Keystone could not be installed, started or asked."""


def _venv_dir() -> Path:
    return Path(os.environ.get("KEYSTONE_VENV") or DEFAULT_VENV)


def install_keystone(venv: Path | None = None, log_path: Path | None = None) -> Path:
    """Keystone and gunicorn in ``venv`` (one pip install, constraints); skipped if done.
    Safe against a concurrent install (file lock). Returns the venv."""
    venv = venv or _venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / INSTALLED_MARK).exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        log_path = log_path or venv.parent / ".venv-keystone-install.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        python = os.environ.get("KEYSTONE_PYTHON") or sys.executable
        with open(log_path, "a") as log:
            _run([python, "-m", "venv", str(venv)], log)
            _run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-c",
                    str(CONSTRAINTS),
                    f"keystone=={KEYSTONE_VERSION}",
                    "gunicorn",
                ],
                log,
            )
        (venv / INSTALLED_MARK).write_text(KEYSTONE_VERSION + "\n")
        return venv


def _run(command: list[str], log: Any, env: dict[str, str] | None = None) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    done = subprocess.run(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    if done.returncode != 0:
        raise KeystoneError(f"{command[0]} {command[1]} failed ({done.returncode}): see {log.name}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _secret(path: Path, env_name: str) -> str:
    """A password kept in the state dir (mode 0600); ``$env_name`` wins the first time."""
    if path.exists():
        return path.read_text().strip()
    value = os.environ.get(env_name) or secrets.token_urlsafe(18)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def _config(state: Path) -> str:
    return f"""[DEFAULT]
log_file = {state / "keystone.log"}
use_stderr = false

[database]
connection = sqlite:///{state / "keystone.db"}

[fernet_tokens]
key_repository = {state / "fernet-keys"}

[credential]
key_repository = {state / "credential-keys"}

[identity]
password_hash_rounds = 4

# One process: an in-memory cache is coherent (revocations invalidate it), and makes each
# token validation several times cheaper.
[cache]
enabled = true
backend = dogpile.cache.memory
"""


def _pid_alive(pid: int, state: Path) -> bool:
    """Whether ``pid`` is the gunicorn ``up`` started for ``state`` (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(state / "keystone.conf").encode() in cmdline


def _running_pid(state: Path) -> int | None:
    try:
        pid = int((state / PID_FILE).read_text())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid, state) else None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v3", timeout=2) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass(frozen=True)
class Keystone:
    """A running Keystone started by :func:`start_keystone`."""

    state_dir: Path
    port: int
    pid: int
    admin_password: str
    service_password: str
    service_username: str = SERVICE_USER
    service_project: str = SERVICE_PROJECT
    region: str = REGION

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/v3"

    def env(self) -> dict[str, str]:
        """The admin's ``OS_*`` variables (what ``up`` prints)."""
        return {
            "OS_AUTH_URL": self.auth_url,
            "OS_USERNAME": "admin",
            "OS_PASSWORD": self.admin_password,
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
        }

    def authtoken_toml(self) -> str:
        """cindermesh's configuration for this Keystone (``auth_strategy = "keystone"``)."""
        return f'[api]\nauth_strategy = "keystone"\n\n{self.authtoken_section()}'

    def authtoken_section(self) -> str:
        """cindermesh's ``[keystone_authtoken]`` section for this Keystone."""
        return f"""[keystone_authtoken]
www_authenticate_uri = "{self.url}"
auth_url = "{self.auth_url}"
username = "{self.service_username}"
password = "{self.service_password}"
project_name = "{self.service_project}"
user_domain_name = "Default"
project_domain_name = "Default"
"""

    def issue_token(self, user: str, password: str, project: str | None = None) -> str:
        """A token for ``user`` (domain Default), scoped to ``project`` if given."""
        return IdentityClient.password_token(self.auth_url, user, password, project)[0]

    def admin(self) -> IdentityClient:
        """An Identity v3 client with the admin's project-scoped token."""
        token, _ = IdentityClient.password_token(
            self.auth_url, "admin", self.admin_password, "admin"
        )
        return IdentityClient(self.auth_url, token)

    def register_volume_service(self, cinder_url: str, region: str | None = None) -> None:
        """The catalog's volume endpoints (``volumev3`` and ``block-storage``) at
        ``<cinder_url>/v3/%(project_id)s``, replacing earlier ones of this region."""
        self.admin().register_volume_service(cinder_url.rstrip("/"), region or self.region)


class IdentityClient:
    """The few Identity v3 calls ``up`` and tests need (idempotent ``ensure_*``)."""

    def __init__(self, auth_url: str, token: str) -> None:
        self.auth_url = auth_url
        self.token = token

    @staticmethod
    def password_token(
        auth_url: str, user: str, password: str, project: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A password token (and its body), scoped to ``project`` (domain Default) if given."""
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        status, headers, body = _call("POST", f"{auth_url}/auth/tokens", {"auth": auth})
        if status != 201:
            raise KeystoneError(f"token for {user!r}: {status} {body}")
        return headers["X-Subject-Token"], body

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        status, _, answer = _call(method, f"{self.auth_url}{path}", body, self.token)
        if status >= 400 and status != 404:
            raise KeystoneError(f"{method} {path}: {status} {answer}")
        return status, answer

    def _find(self, collection: str, **filters: str) -> dict[str, Any] | None:
        query = "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in filters.items())
        _, body = self.call("GET", f"/{collection}?{query}")
        found = body.get(collection) or []
        return found[0] if found else None

    def ensure_project(self, name: str, domain_id: str = "default") -> str:
        found = self._find("projects", name=name, domain_id=domain_id)
        if found:
            return str(found["id"])
        _, body = self.call(
            "POST", "/projects", {"project": {"name": name, "domain_id": domain_id}}
        )
        return str(body["project"]["id"])

    def role_id(self, name: str) -> str:
        found = self._find("roles", name=name)
        if found:
            return str(found["id"])
        _, body = self.call("POST", "/roles", {"role": {"name": name}})
        return str(body["role"]["id"])

    def ensure_user(
        self,
        name: str,
        password: str,
        project_id: str,
        roles: tuple[str, ...] = ("member",),
        domain_id: str = "default",
    ) -> str:
        """The user (its password set to ``password``) with ``roles`` on the project."""
        found = self._find("users", name=name, domain_id=domain_id)
        if found:
            user_id = str(found["id"])
            # A password change revokes the user's tokens: only when it differs.
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "id": user_id, "password": password}}}}}  # fmt: skip
            if _call("POST", f"{self.auth_url}/auth/tokens", body)[0] != 201:
                self.call("PATCH", f"/users/{user_id}", {"user": {"password": password}})
        else:
            _, body = self.call(
                "POST",
                "/users",
                {
                    "user": {
                        "name": name,
                        "password": password,
                        "domain_id": domain_id,
                        "default_project_id": project_id,
                    }
                },
            )
            user_id = str(body["user"]["id"])
        for role in roles:
            self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.role_id(role)}")
        return user_id

    def register_volume_service(self, cinder_url: str, region: str = REGION) -> None:
        url = f"{cinder_url}/v3/%(project_id)s"
        for name, kind in (("cinderv3", "volumev3"), ("cinder", "block-storage")):
            service = self._find("services", type=kind)
            if service is None:
                _, body = self.call(
                    "POST", "/services", {"service": {"name": name, "type": kind, "enabled": True}}
                )
                service = body["service"]
            _, body = self.call("GET", f"/endpoints?service_id={service['id']}")
            for endpoint in body.get("endpoints", []):
                if endpoint.get("region_id") == region:
                    self.call("DELETE", f"/endpoints/{endpoint['id']}")
            for interface in ("public", "internal", "admin"):
                endpoint = {
                    "service_id": service["id"],
                    "interface": interface,
                    "region_id": region,
                    "url": url,
                }
                self.call("POST", "/endpoints", {"endpoint": endpoint})


def _call(
    method: str, url: str, body: Any = None, token: str | None = None
) -> tuple[int, Any, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, text = error.code, error.headers, error.read()
    except OSError as error:
        raise KeystoneError(f"{method} {url}: {error}") from error
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {"text": text.decode(errors="replace")}
    return int(status), headers, answer


def start_keystone(
    state_dir: Path | str | None = None,
    port: int | None = None,
    cinder_url: str | None = None,
    timeout: float = 120.0,
) -> Keystone:
    """Keystone running with its state in ``state_dir`` (installed, bootstrapped and
    started if needed; see the module docstring). Reuses a Keystone already running there."""
    state = Path(state_dir or os.environ.get("KEYSTONE_STATE_DIR") or DEFAULT_STATE_DIR).resolve()
    state.mkdir(parents=True, exist_ok=True)
    venv = install_keystone(log_path=state / "install.log")
    admin_password = _secret(state / "admin-password", "KEYSTONE_ADMIN_PASSWORD")
    service_password = _secret(state / "service-password", "KEYSTONE_SERVICE_PASSWORD")
    with open(state / "up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = _running_pid(state)
        if pid is not None:
            port = int((state / "port").read_text())
        else:
            if port is None:
                env_port = os.environ.get("KEYSTONE_PORT")
                previous = state / "port"
                port = int(env_port) if env_port else None
                if port is None and previous.exists():
                    port = int(previous.read_text())
                    with socket.socket() as s:
                        # As gunicorn binds: a port in TIME_WAIT is free.
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        try:
                            s.bind(("127.0.0.1", port))
                        except OSError:
                            port = None
                if port is None:
                    port = _free_port()
            _bootstrap(state, venv, admin_password, port)
            pid = _serve(state, venv, port, timeout)
        keystone = Keystone(
            state_dir=state,
            port=port,
            pid=pid,
            admin_password=admin_password,
            service_password=service_password,
        )
        admin = keystone.admin()
        service_project = admin.ensure_project(SERVICE_PROJECT)
        admin.ensure_user(
            SERVICE_USER, service_password, service_project, roles=("admin", "service")
        )
        cinder_url = cinder_url or os.environ.get("KEYSTONE_CINDER_URL")
        if cinder_url:
            keystone.register_volume_service(cinder_url)
        lines = "".join(f"{k}={v}\n" for k, v in keystone.env().items())
        (state / "openrc").write_text("".join(f"export {line}\n" for line in lines.splitlines()))
        (state / "cindermesh-keystone.toml").write_text(keystone.authtoken_toml())
        return keystone


def _bootstrap(state: Path, venv: Path, admin_password: str, port: int) -> None:
    """keystone-manage's set-up, skipped when done before for this port (the endpoints)."""
    conf = state / "keystone.conf"
    conf.write_text(_config(state))
    done = state / "bootstrap.done"
    if done.exists() and done.read_text().strip() == str(port):
        return
    manage = [str(venv / "bin" / "keystone-manage"), "--config-file", str(conf)]
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    url = f"http://127.0.0.1:{port}/v3"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with open(state / "bootstrap.log", "a") as log:
        _run([*manage, "db_sync"], log, env)
        owner = ["--keystone-user", user, "--keystone-group", group]
        _run([*manage, "fernet_setup", *owner], log, env)
        _run([*manage, "credential_setup", *owner], log, env)
        _run(
            [
                *manage,
                "bootstrap",
                # One argument: a password that starts with "-" is not taken for an option.
                f"--bootstrap-password={admin_password}",
                "--bootstrap-username",
                "admin",
                "--bootstrap-project-name",
                "admin",
                "--bootstrap-role-name",
                "admin",
                "--bootstrap-service-name",
                "keystone",
                "--bootstrap-region-id",
                REGION,
                "--bootstrap-admin-url",
                url,
                "--bootstrap-public-url",
                url,
                "--bootstrap-internal-url",
                url,
            ],
            log,
            env,
        )
    done.write_text(f"{port}\n")


def _serve(state: Path, venv: Path, port: int, timeout: float) -> int:
    conf = state / "keystone.conf"
    env = dict(
        os.environ,
        OS_KEYSTONE_CONFIG_FILES=str(conf),
        PYTHONWARNINGS="ignore",
        PYTHONPATH=str(HERE),
    )
    env.pop("OS_KEYSTONE_CONFIG_DIR", None)
    log = open(state / "gunicorn.log", "a")  # noqa: SIM115 (the child keeps it)
    process = subprocess.Popen(
        [
            str(venv / "bin" / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "1",
            "--timeout",
            "120",
            "--env",
            f"OS_KEYSTONE_CONFIG_FILES={conf}",
            "--no-control-socket",  # gunicorn's default is one per user, in ~/.gunicorn
            "--access-logfile",
            str(state / "access.log"),
            "keystone_wsgi:application",
        ],
        env=env,
        cwd=state,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    (state / PID_FILE).write_text(f"{process.pid}\n")
    (state / "port").write_text(f"{port}\n")
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}"
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_keystone(state)
            tail = (state / "gunicorn.log").read_text()[-3000:]
            raise KeystoneError(f"Keystone did not answer on {url}:\n{tail}")
        time.sleep(0.1)
    return process.pid


def stop_keystone(state_dir: Path | str | None = None, timeout: float = 15.0) -> bool:
    """Stops the Keystone ``up`` started in ``state_dir``; False if none was running."""
    state = Path(state_dir or os.environ.get("KEYSTONE_STATE_DIR") or DEFAULT_STATE_DIR).resolve()
    pid = _running_pid(state)
    if pid is None:
        (state / PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid, state) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _pid_alive(pid, state):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # its own session: the master and its worker
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    (state / PID_FILE).unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keystone", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="install (once), start and bootstrap Keystone")
    up.add_argument("state_dir", nargs="?", help="default $KEYSTONE_STATE_DIR or data/keystone")
    up.add_argument("--port", type=int, help="default $KEYSTONE_PORT, the last one, or free")
    up.add_argument("--cinder-url", help="register the volume service at this REST URL")
    down = commands.add_parser("down", help="stop the Keystone up started")
    down.add_argument("state_dir", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            keystone = start_keystone(args.state_dir, args.port, args.cinder_url)
            sys.stdout.write("".join(f"{k}={v}\n" for k, v in keystone.env().items()))
        else:
            stop_keystone(args.state_dir)
    except KeystoneError as error:
        print(f"keystone {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
