"""The real, unmodified OpenStack clients, configured as users run them without Keystone.

- `CinderCli`: python-cinderclient's `cinder` console script from this venv, run as a
  subprocess with `--os-auth-type noauth` (token `user:project`, paths `/v3/volumes...`).
- `cinderclient_api`: cinderclient's Python API over a keystoneauth session with
  `CinderNoAuthPlugin` (paths `/v3/{project}/volumes...`, no version discovery).
- `sdk_connection`: openstacksdk with `auth_type="none"` (keystoneauth's NoAuth sends
  `X-Auth-Token: notused`, which Cinder's noauth reads as user and project `notused`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status

__all__ = [
    "SDK_PROJECT",
    "CinderCli",
    "cinderclient_api",
    "cinderclient_at",
    "delete_all_volumes",
    "exchanges",
    "parse_list_table",
    "parse_property_table",
    "rest_volume",
    "sdk_connection",
]

# keystoneauth1.noauth.NoAuth.get_token() returns "notused": the token is user and project.
SDK_PROJECT = "notused"
TIMEOUT = 60.0


@dataclass(frozen=True)
class CinderCli:
    """`cinder --os-auth-type noauth ... --os-endpoint <rest>/v3 <command>`, never prompting."""

    rest_url: str
    user: str
    project: str
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            str(Path(sys.executable).parent / "cinder"),
            "--debug",  # to stderr: every request and response, shown when a command fails
            "--os-auth-type",
            "noauth",
            "--os-user-id",
            self.user,
            "--os-project-id",
            self.project,
            "--os-endpoint",
            f"{self.rest_url}/v3",
            *args,
        ]
        return subprocess.run(
            command,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """Runs a command that must succeed; returns its standard output."""
        done = self.run(*args)
        assert done.returncode == 0, (
            f"`cinder {' '.join(args)}` exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- exchanges (--debug)\n{exchanges(done.stderr)}"
        )
        return done.stdout

    def _env(self) -> dict[str, str]:
        # Nothing from the caller's OpenStack settings; a private HOME for any client cache.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OS_", "CINDER", "CINDERCLIENT"))
        }
        env["HOME"] = str(self.home)
        return env


def exchanges(debug_output: str) -> str:
    """The requests and responses (and the final error) from `cinder --debug` output."""
    wanted = ("REQ:", "RESP:", "RESP BODY:", "ERROR:")
    return "\n".join(line for line in debug_output.splitlines() if line.startswith(wanted))


def parse_property_table(text: str) -> dict[str, str]:
    """`| Property | Value |` tables (show, create): a wrapped value continues on rows with no key."""
    result: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|", 1)]
        if len(cells) != 2 or cells == ["Property", "Value"]:
            continue
        key, value = cells
        if key:
            result[key] = value
            last = key
        elif last:
            result[last] += value
    return result


def parse_list_table(text: str) -> list[dict[str, str]]:
    """A `cinder list` table as rows keyed by its column titles."""
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    if not rows:
        return []
    titles, *body = rows
    return [dict(zip(titles, row, strict=True)) for row in body]


def rest_volume(
    cluster: Cluster, project: str, user: str, name: str, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """Creates an `available` volume over plain REST (set-up independent of the clients)."""
    hdrs = headers(project, user)
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    body = {"volume": {"size": 1, "name": name, "metadata": metadata or {}}}
    with httpx.Client(timeout=TIMEOUT) as client:
        created = client.post(base, headers=hdrs, json=body)
        assert created.status_code == 202, created.text
        volume_id = created.json()["volume"]["id"]
        return wait_for_status(client, f"{base}/{volume_id}", hdrs, "available")


def delete_all_volumes(cluster: Cluster, project: str, user: str) -> None:
    """Deletes a project's volumes over plain REST and waits until they are gone."""
    hdrs = headers(project, user)
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    with httpx.Client(timeout=TIMEOUT) as client:
        ids = [v["id"] for v in client.get(base, headers=hdrs).json()["volumes"]]
        for volume_id in ids:
            deadline = time.monotonic() + TIMEOUT
            # Refused (400) while still `creating`; `available` and `error` volumes go at once.
            while (
                deleted := client.delete(f"{base}/{volume_id}", headers=hdrs)
            ).status_code == 400:
                assert time.monotonic() < deadline, deleted.text
                time.sleep(0.05)
            assert deleted.status_code in (202, 404), deleted.text
        for volume_id in ids:
            assert wait_for_404(client, f"{base}/{volume_id}", hdrs).status_code == 404


def cinderclient_api(cluster: Cluster, user: str, project: str) -> Any:
    """`cinderclient.client.Client("3.71", session=...)` with the noauth plugin, as documented."""
    from cinderclient import client
    from cinderclient.contrib import noauth
    from keystoneauth1 import session

    auth = noauth.CinderNoAuthPlugin(
        user_id=user, project_id=project, endpoint=f"{cluster.rest_url}/v3"
    )
    return client.Client("3.71", session=session.Session(auth=auth, timeout=TIMEOUT))


def cinderclient_at(cluster: Cluster, user: str, project: str, version: str) -> Any:
    """As ``cinderclient_api``, at ``version`` (Nova's ``cinderclient(context, '3.44')``)."""
    from cinderclient import client
    from cinderclient.contrib import noauth
    from keystoneauth1 import session

    auth = noauth.CinderNoAuthPlugin(
        user_id=user, project_id=project, endpoint=f"{cluster.rest_url}/v3"
    )
    return client.Client(version, session=session.Session(auth=auth, timeout=TIMEOUT))


def sdk_connection(cluster: Cluster) -> Any:
    """`openstack.connect(auth_type="none", block_storage_endpoint_override=<rest>/v3)`."""
    import openstack

    return openstack.connect(
        auth_type="none",
        block_storage_endpoint_override=f"{cluster.rest_url}/v3",
        load_yaml_config=False,
        load_envvars=False,
        api_timeout=TIMEOUT,
    )
