"""Tempest against cindermesh: Keystone, a network stub and the product on free ports, Tempest's
``tempest.api.volume`` tests, and the verdict against ``must_pass.txt``.

Run it as ``tests/tempest/run`` (which installs Tempest first). Everything a run makes lives in
``data/tempest/``: ``work/`` (Keystone, cindermesh's data and logs, the Tempest workspace and its
``tempest.conf``), ``last-run.subunit``, ``last-run.json`` (counts, must-pass failures, newly
passing tests, every result) and ``failures.txt`` (every failing test by class, with the first
line of its error). The exit status is 1 if any must-pass test failed, errored, was skipped or
did not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.e2e.cluster import Cluster, free_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TEMPEST_VENV = REPO / ".venv-tempest"
MUST_PASS = HERE / "must_pass.txt"
OUT = REPO / "data" / "tempest"

#: What the run selects, and the image tests it leaves out (NOTES.md, "Keystone and Tempest"):
#: with Glance off ``VolumesGetTest`` fails reading image clients, so Glance is "on" and the
#: tests that would really use it are excluded.
SELECT_REGEX = r"^tempest\.api\.volume"
EXCLUDE_REGEX = r"(\[.*\bimage\b.*\])|(\.VolumesExtendTest\.test_volume_extend\[)"
REGION = "RegionOne"
#: The file backends the cluster runs (``[volume] backend_names``, multi_backend = true): each
#: its own volume manager process and port.
BACKENDS = ("file-1", "file-2")

#: The statuses subunit reports that count as a pass.
PASSED = {"success"}
SKIPPED = {"skip"}


def log(message: str) -> None:
    print(f"[tempest] {message}", flush=True)


def base_id(test_id: str) -> str:
    """A test id without Tempest's attribute suffix (``[id-...,smoke]``)."""
    return re.sub(r"\[[^\]]*\]$", "", test_id)


def read_must_pass(path: Path = MUST_PASS) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(base_id(line))
    return names


# --- HTTP helpers -------------------------------------------------------------------------


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status, response_headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        status, response_headers = error.code, dict(error.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return status, response_headers, parsed


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http("GET", url, timeout=5)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- Keystone -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Keystone:
    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str
    project_domain_name: str
    region: str
    #: The service user the api validates tokens with (``[keystone_authtoken]``).
    service_username: str = ""
    service_password: str = ""
    service_project: str = ""

    def token(self) -> tuple[str, dict[str, Any]]:
        """An admin token, project-scoped, and its token body."""
        status, headers, body = http(
            "POST",
            f"{self.auth_url}/auth/tokens",
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": self.username,
                                "password": self.password,
                                "domain": {"name": self.user_domain_name},
                            }
                        },
                    },
                    "scope": {
                        "project": {
                            "name": self.project_name,
                            "domain": {"name": self.project_domain_name},
                        }
                    },
                }
            },
        )
        if status != 201:
            raise RuntimeError(f"Keystone refused the admin credentials: {status} {body}")
        return headers["X-Subject-Token"], body["token"]


@contextmanager
def keystone(state_dir: Path) -> Iterator[Keystone]:
    """Keystone from ``deploy/keystone`` (installed into ``.venv-keystone`` on first use), with
    its state in ``state_dir``; stopped afterwards."""
    from deploy.keystone.keystone_up import start_keystone, stop_keystone

    started = start_keystone(state_dir)
    try:
        yield Keystone(
            auth_url=started.auth_url,
            username="admin",
            password=started.admin_password,
            project_name="admin",
            user_domain_name="Default",
            project_domain_name="Default",
            region=started.region,
            service_username=started.service_username,
            service_password=started.service_password,
            service_project=started.service_project,
        )
    finally:
        stop_keystone(state_dir)


def register_endpoint(ks: Keystone, token: str, service_type: str, url: str) -> None:
    """One service of ``service_type`` with one public endpoint ``url`` in ``ks.region``
    (an existing one of that type is reused, its endpoints replaced)."""
    base, headers = ks.auth_url, {"X-Auth-Token": token}
    _, _, body = http("GET", f"{base}/services?type={service_type}", headers=headers)
    services = body["services"]
    if services:
        service_id = services[0]["id"]
    else:
        status, _, body = http(
            "POST",
            f"{base}/services",
            {"service": {"type": service_type, "name": service_type, "enabled": True}},
            headers,
        )
        if status != 201:
            raise RuntimeError(f"cannot create service {service_type}: {status} {body}")
        service_id = body["service"]["id"]
    _, _, body = http("GET", f"{base}/endpoints?service_id={service_id}", headers=headers)
    for endpoint in body["endpoints"]:
        http("DELETE", f"{base}/endpoints/{endpoint['id']}", headers=headers)
    for interface in ("public", "internal", "admin"):
        status, _, body = http(
            "POST",
            f"{base}/endpoints",
            {
                "endpoint": {
                    "service_id": service_id,
                    "interface": interface,
                    "url": url,
                    "region_id": ks.region,
                    "enabled": True,
                }
            },
            headers,
        )
        if status != 201:
            raise RuntimeError(f"cannot create endpoint {url}: {status} {body}")


# --- The network stub ----------------------------------------------------------------------


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class NetworkStub(_Quiet):
    """Neutron as far as Tempest's volume tests touch it: the security groups of a project,
    listed at clean-up of its dynamic credentials (none)."""

    def do_GET(self) -> None:
        if self.path.split("?")[0].rstrip("/") == "/v2.0/security-groups":
            self.reply(200, {"security_groups": []})
        else:
            self.reply(404, {"NeutronError": {"message": f"{self.path} is a stub"}})

    def do_DELETE(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], port: int) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- cindermesh -----------------------------------------------------------------------------


def cindermesh_config(base: Path, ks: Keystone) -> Cluster:
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    cluster = Cluster(
        data_dir=data_dir,
        config_path=base / "cindermesh.toml",
        rest_port=free_port(),
        api_port=free_port(),
        scheduler_port=free_port(),
        backend_port=free_port(),
    )
    auth = f"""auth_strategy = "keystone"

[keystone_authtoken]
auth_url = "{ks.auth_url}"
www_authenticate_uri = "{ks.auth_url}"
username = "{ks.service_username}"
password = "{ks.service_password}"
project_name = "{ks.service_project}"
user_domain_name = "Default"
project_domain_name = "Default"
"""
    ports = [cluster.backend_port, *(free_port() for _ in BACKENDS[1:])]
    backends = "".join(
        f"""
[[backends]]
name = "{name}"
driver = "file"
port = {port}
total_capacity_gb = 1000
report_interval = 2.0
"""
        for name, port in zip(BACKENDS, ports, strict=True)
    )
    cluster.config_path.write_text(
        f"""data_dir = "{data_dir}"
host_name = "tempest"

[gateway]
port = {cluster.rest_port}
admin_port = {free_port()}

[api]
port = {cluster.api_port}
{auth}
[scheduler]
port = {cluster.scheduler_port}

{backends}"""
    )
    return cluster


@contextmanager
def running(cluster: Cluster, extra_env: dict[str, str], cwd: Path = REPO) -> Iterator[Cluster]:
    here = Path.cwd()
    os.chdir(cwd)  # ``python -m`` puts the working directory first on the path
    try:
        cluster.start(extra_env=extra_env, timeout=120)
    finally:
        os.chdir(here)
    try:
        yield cluster
    finally:
        cluster.stop()
        (cluster.data_dir.parent / "cindermesh.log").write_text("".join(cluster.output))


def pools(volume_url: str, token: str, backends: int = len(BACKENDS)) -> list[dict[str, Any]]:
    """``get_pools?detail=true`` as admin, once ``backends`` backends have reported."""
    deadline = time.monotonic() + 60
    while True:
        status, _, body = http(
            "GET",
            f"{volume_url}/scheduler-stats/get_pools?detail=true",
            headers={"X-Auth-Token": token},
        )
        if status == 200 and len(body.get("pools") or []) >= backends:
            return list(body["pools"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"get_pools answered {status} {body}")
        time.sleep(0.5)


def max_microversion(rest_url: str) -> str:
    _, _, body = http("GET", f"{rest_url}/")
    for version in body["versions"]:
        if version["id"] == "v3.0":
            return str(version["version"])
    raise RuntimeError(f"no v3.0 in the versions document: {body}")


# --- Tempest --------------------------------------------------------------------------------


def tempest_conf(
    ks: Keystone, pool_list: list[dict[str, Any]], microversion: str, log_dir: Path
) -> str:
    capabilities = pool_list[0]["capabilities"]
    # Configured order (Tempest's retype tests migrate from the first to the second).
    reported = {p["capabilities"]["volume_backend_name"] for p in pool_list}
    backend_names = [b for b in BACKENDS if b in reported] + sorted(reported - set(BACKENDS))
    return f"""[DEFAULT]
log_dir = {log_dir}
log_file = tempest.log
use_stderr = false

[auth]
admin_username = {ks.username}
admin_password = {ks.password}
admin_project_name = {ks.project_name}
admin_domain_name = {ks.user_domain_name}
use_dynamic_credentials = true
create_isolated_networks = false
tempest_roles = member

[identity]
uri_v3 = {ks.auth_url}
auth_version = v3
region = {ks.region}
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false

[enforce_scope]
cinder = true

[service_available]
cinder = true
glance = true
neutron = true
nova = false
swift = false
keystone = true

[compute]
region = {ks.region}

[compute-feature-enabled]
attach_encrypted_volume = false
swap_volume = false
# Multiattach volume types exist (issue 11); with Nova off, only the volume tests that need no
# server read this (the multiattach retype).
volume_multiattach = true

[network]
region = {ks.region}
project_networks_reachable = false

[volume]
catalog_type = volumev3
region = {ks.region}
endpoint_type = publicURL
storage_protocol = {capabilities["storage_protocol"]}
vendor_name = {capabilities["vendor_name"]}
backend_names = {",".join(backend_names)}
min_microversion = 3.0
max_microversion = {microversion}
build_timeout = 60
build_interval = 1

[volume-feature-enabled]
backup = false
multi_backend = {"true" if len(backend_names) > 1 else "false"}
manage_volume = false
manage_snapshot = false
extend_attached_volume = false
"""


def tempest(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("OS_CLOUD", None)
    for key in [k for k in env if k.startswith("OS_")]:
        del env[key]
    if "workspace" in kwargs:
        workspace = kwargs.pop("workspace")
        env["TEMPEST_CONFIG_DIR"] = str(workspace / "etc")
        env["TEMPEST_CONFIG"] = "tempest.conf"
    return subprocess.run(
        [str(TEMPEST_VENV / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        text=True,
        check=False,
        **kwargs,
    )


def run_tempest(workspace: Path, conf: str, concurrency: int, regex: str) -> float:
    if workspace.exists():
        shutil.rmtree(workspace)
    init = tempest(
        "tempest",
        "init",
        "--name",
        f"cindermesh-{os.getpid()}",
        "--workspace-path",
        str(workspace.parent / "workspace.yaml"),
        str(workspace),
        cwd=REPO,
        capture_output=True,
    )
    if init.returncode:
        raise RuntimeError(f"tempest init failed: {init.stdout}{init.stderr}")
    (workspace / "etc" / "tempest.conf").write_text(conf)
    started = time.monotonic()
    with (workspace / "tempest-run.log").open("w") as out:
        tempest(
            "tempest",
            "run",
            "--regex",
            regex,
            "--exclude-regex",
            EXCLUDE_REGEX,
            "--concurrency",
            str(concurrency),
            cwd=workspace,
            workspace=workspace,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    elapsed = time.monotonic() - started
    with (OUT / "last-run.subunit").open("wb") as out_bytes:
        subprocess.run(
            [str(TEMPEST_VENV / "bin" / "stestr"), "last", "--subunit"],
            cwd=workspace,
            stdout=out_bytes,
            check=False,
        )
    return elapsed


def results(subunit_path: Path) -> list[dict[str, str]]:
    with subunit_path.open("rb") as stream:
        parsed = subprocess.run(
            [str(TEMPEST_VENV / "bin" / "python"), str(HERE / "parse_subunit.py")],
            stdin=stream,
            capture_output=True,
            text=True,
            check=True,
        )
    return [json.loads(line) for line in parsed.stdout.splitlines() if line.strip()]


def area(test_id: str) -> str:
    """A test's class (``tempest.api.volume.test_volumes_get.VolumesGetTest``); a class set-up
    failure (``setUpClass (module.Class)``) counts under its class."""
    if match := re.match(r"(setUpClass|tearDownClass) \((.+)\)", test_id):
        return match.group(2)
    return base_id(test_id).rsplit(".", 1)[0]


def verdict(records: list[dict[str, str]], must_pass: list[str]) -> dict[str, Any]:
    by_id = {base_id(r["id"]): r for r in records}
    counts = Counter(
        "passed" if r["status"] in PASSED else "skipped" if r["status"] in SKIPPED else "failed"
        for r in records
    )
    must_failures = []
    for name in must_pass:
        record = by_id.get(name)
        if record is None:
            must_failures.append({"id": name, "status": "not run", "reason": ""})
        elif record["status"] not in PASSED:
            must_failures.append(record)
    must = set(must_pass)
    newly = sorted(name for name, r in by_id.items() if r["status"] in PASSED and name not in must)
    failing = [r for r in records if r["status"] not in PASSED | SKIPPED]
    return {
        "counts": {k: counts.get(k, 0) for k in ("passed", "failed", "skipped")},
        "must_pass": len(must_pass),
        "must_pass_failures": must_failures,
        "newly_passing": newly,
        "failures": failing,
        "skips": [r for r in records if r["status"] in SKIPPED],
        "results": records,
    }


def failures_text(summary: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for record in summary["failures"]:
        groups[area(record["id"])].append(record)
    lines = [
        "# Failing Tempest tests by class, with the first line of each error",
        f"# (written by tests/tempest/run; {summary['counts']})",
        "",
    ]
    for name in sorted(groups):
        lines.append(f"{name}  ({len(groups[name])})")
        for record in sorted(groups[name], key=lambda r: r["id"]):
            short = base_id(record["id"]).removeprefix(name + ".")
            lines.append(f"    {short}: {record['reason'][:300]}")
        lines.append("")
    return "\n".join(lines)


def report(summary: dict[str, Any], timings: dict[str, float]) -> None:
    counts = summary["counts"]
    log(
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
        f"(must pass: {summary['must_pass']}; timings: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
        + ")"
    )
    if summary["must_pass_failures"]:
        log(f"MUST-PASS FAILURES ({len(summary['must_pass_failures'])}):")
        for record in summary["must_pass_failures"]:
            log(f"  {record['id']}: {record['status']} {record['reason'][:200]}")
    if summary["newly_passing"]:
        log(f"newly passing, add to must_pass.txt ({len(summary['newly_passing'])}):")
        for name in summary["newly_passing"]:
            print(name, flush=True)
    log(f"all failures by class: {OUT / 'failures.txt'}; summary: {OUT / 'last-run.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--regex", default=SELECT_REGEX, help="which Tempest tests to run")
    parser.add_argument(
        "--judge-only",
        action="store_true",
        help="judge data/tempest/last-run.subunit again (e.g. after editing must_pass.txt)",
    )
    args = parser.parse_args(argv)
    if args.judge_only:
        previous = json.loads((OUT / "last-run.json").read_text())
        return judge(args.regex, previous.get("timings", {}))

    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    timings: dict[str, float] = {}
    with ExitStack() as stack:
        started = time.monotonic()
        ks = stack.enter_context(keystone(work / "keystone"))
        timings["keystone start"] = time.monotonic() - started
        log(f"Keystone at {ks.auth_url} ({timings['keystone start']:.1f}s)")
        admin_token, admin_body = ks.token()
        admin_project = admin_body["project"]["id"]

        network_port = free_port()
        stack.enter_context(serve(NetworkStub, network_port))
        register_endpoint(ks, admin_token, "network", f"http://127.0.0.1:{network_port}")

        started = time.monotonic()
        cluster = cindermesh_config(work / "cindermesh", ks)
        env = {"CINDERMESH_CONFIG": str(cluster.config_path)}
        # TEMPEST_PRODUCT_DIR: another checkout of cindermesh to test (e.g. a git worktree of
        # a commit, with its protos built), run with this venv.
        product = Path(os.environ.get("TEMPEST_PRODUCT_DIR") or REPO).resolve()
        env["PYTHONPATH"] = str(product)
        stack.enter_context(running(cluster, env, product))
        volume_base = cluster.rest_url
        timings["cindermesh start"] = time.monotonic() - started
        register_endpoint(ks, admin_token, "volumev3", f"{volume_base}/v3/%(project_id)s")
        pool_list = pools(f"{volume_base}/v3/{admin_project}", admin_token)
        microversion = max_microversion(cluster.rest_url)
        log(f"cindermesh at {volume_base}, pools {[p['name'] for p in pool_list]}")

        conf = tempest_conf(ks, pool_list, microversion, work)
        log(f"running tempest ({args.regex}, concurrency {args.concurrency})")
        timings["tempest run"] = run_tempest(work / "tempest", conf, args.concurrency, args.regex)

    return judge(args.regex, timings)


def judge(regex: str, timings: dict[str, float]) -> int:
    records = results(OUT / "last-run.subunit")
    must_pass = read_must_pass()
    summary = verdict(records, must_pass if regex == SELECT_REGEX else [])
    summary["timings"] = timings
    (OUT / "last-run.json").write_text(json.dumps(summary, indent=1) + "\n")
    (OUT / "failures.txt").write_text(failures_text(summary))
    report(summary, timings)
    if not records:
        log("tempest produced no results; see data/tempest/work/tempest/tempest-run.log")
        return 1
    return 1 if summary["must_pass_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
