"""python-openstackclient, unmodified, against the product with Keystone password auth: the
``openstack volume`` and ``openstack volume type`` commands and ``openstack quota show``, which
find cindermesh through Keystone's catalog (``volumev3`` / ``block-storage``).

The client is installed into ``<repo>/.venv-osc`` on first use (pinned by
``deploy/openstack-constraints.txt`` where that file pins a package)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy.keystone.keystone_up import Keystone
from tests.e2e.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-osc"
OPENSTACK = VENV / "bin" / "openstack"
CONSTRAINTS = REPO / "deploy" / "openstack-constraints.txt"
STAMP = VENV / ".installed"


def _install_openstackclient() -> None:
    with (REPO / ".venv-osc.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if STAMP.exists() and OPENSTACK.exists():
            return
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "-c", str(CONSTRAINTS), "python-openstackclient"],
            check=True,
        )  # fmt: skip
        STAMP.touch()


@pytest.fixture(scope="module")
def osc_env(keystone: Keystone, ks_cluster: Cluster) -> dict[str, str]:
    """The admin's OS_* variables; the volume service comes from the catalog."""
    _install_openstackclient()
    admin = keystone.admin()
    project_id = admin.ensure_project("osc")
    admin.ensure_user("osc-user", "pw-osc", project_id, roles=("member", "reader"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(keystone.env())
    env.update({"OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"})
    return env


def openstack(env: dict[str, str], *args: str, user: str | None = None) -> Any:
    """One command; its JSON output (``-f json``) when it prints any."""
    run_env = dict(env)
    if user is not None:
        run_env.update(
            {"OS_USERNAME": user, "OS_PASSWORD": f"pw-{user.removesuffix('-user')}",
             "OS_PROJECT_NAME": user.removesuffix("-user")}
        )  # fmt: skip
    result = subprocess.run(
        [str(OPENSTACK), *args], env=run_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_volume_lifecycle_with_openstackclient(osc_env: dict[str, str]) -> None:
    created = openstack(osc_env, "volume", "create", "--size", "1", "osc-vol", "-f", "json",
                        user="osc-user")  # fmt: skip
    assert created["name"] == "osc-vol" and created["size"] == 1
    volume_id = created["id"]
    for _ in range(100):
        shown = openstack(osc_env, "volume", "show", volume_id, "-f", "json", user="osc-user")
        if shown["status"] == "available":
            break
    assert shown["status"] == "available", shown
    listed = openstack(osc_env, "volume", "list", "-f", "json", user="osc-user")
    assert volume_id in [v["ID"] for v in listed]
    openstack(osc_env, "volume", "set", "--name", "osc-renamed", "--property", "k=v",
              "--description", "d", volume_id, user="osc-user")  # fmt: skip
    shown = openstack(osc_env, "volume", "show", volume_id, "-f", "json", user="osc-user")
    assert shown["name"] == "osc-renamed" and shown["description"] == "d"
    assert "k" in str(shown["properties"])
    openstack(osc_env, "volume", "delete", volume_id, user="osc-user")
    for _ in range(100):
        listed = openstack(osc_env, "volume", "list", "-f", "json", user="osc-user")
        if volume_id not in [v["ID"] for v in listed]:
            break
    assert volume_id not in [v["ID"] for v in listed]


def test_volume_type_and_quota_with_openstackclient(osc_env: dict[str, str]) -> None:
    created = openstack(osc_env, "volume", "type", "create", "osc-type", "--description", "t",
                        "-f", "json")  # fmt: skip
    assert created["name"] == "osc-type"
    openstack(osc_env, "volume", "type", "set", "--property", "osc:key=v", "osc-type")
    shown = openstack(osc_env, "volume", "type", "show", "osc-type", "-f", "json")
    assert "osc:key" in str(shown["properties"])
    quota = openstack(osc_env, "quota", "show", "--volume", "osc", "-f", "json")
    rows = {row["Resource"]: row["Limit"] for row in quota} if isinstance(quota, list) else quota
    assert rows["volumes"] == 10, quota
    openstack(osc_env, "volume", "type", "delete", "osc-type")
