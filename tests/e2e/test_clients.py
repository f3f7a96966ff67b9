"""Unmodified python-cinderclient (CLI and Python API) and openstacksdk against the real gateway.

Effects are checked over plain REST (or through the client itself), never only by exit codes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client_helpers import (
    SDK_PROJECT,
    CinderCli,
    cinderclient_api,
    delete_all_volumes,
    exchanges,
    parse_list_table,
    parse_property_table,
    rest_volume,
    sdk_connection,
)
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status

USER = "cli-user"

# openstacksdk's own deprecation notices (influxdb, _compute_attributes) are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")


def rest_get(cluster: Cluster, project: str, volume_id: str) -> httpx.Response:
    url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
    return httpx.get(url, headers=headers(project, USER), timeout=30)


def rest_show(cluster: Cluster, project: str, volume_id: str) -> dict[str, Any]:
    response = rest_get(cluster, project, volume_id)
    assert response.status_code == 200, response.text
    volume: dict[str, Any] = response.json()["volume"]
    return volume


def rest_wait_gone(cluster: Cluster, project: str, volume_id: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
    with httpx.Client(timeout=30) as client:
        gone = wait_for_404(client, url, headers(project, USER))
    assert gone.status_code == 404, gone.text


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _tidy_project(cluster: Cluster, project: str) -> Iterator[None]:
    """Volumes left in the test's project are deleted: the cluster and its backend are shared."""
    yield
    delete_all_volumes(cluster, project, USER)


@pytest.fixture()
def other_project(cluster: Cluster) -> Iterator[str]:
    other = uuid.uuid4().hex
    yield other
    delete_all_volumes(cluster, other, USER)


@pytest.fixture()
def cli(cluster: Cluster, project: str, tmp_path: Path) -> CinderCli:
    return CinderCli(rest_url=cluster.rest_url, user=USER, project=project, home=tmp_path)


# --- python-cinderclient: the `cinder` CLI -------------------------------------------------


def test_cli_create(cli: CinderCli, cluster: Cluster, project: str) -> None:
    name = unique("cli-create")
    shown = parse_property_table(cli.ok("create", "--name", name, "1"))
    assert shown["name"] == name and shown["size"] == "1"
    volume_id = shown["id"]
    uuid.UUID(volume_id)
    with httpx.Client(timeout=30) as client:
        url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
        volume = wait_for_status(client, url, headers(project, USER), "available")
    assert volume["name"] == name and volume["size"] == 1
    assert volume["user_id"] == USER
    assert volume["os-vol-tenant-attr:tenant_id"] == project


def test_cli_create_with_description_and_metadata(
    cli: CinderCli, cluster: Cluster, project: str
) -> None:
    name = unique("cli-create-meta")
    out = cli.ok("create", "--name", name, "--description", "d 1", "--metadata", "a=1", "b=2", "2")
    volume_id = parse_property_table(out)["id"]
    with httpx.Client(timeout=30) as client:
        url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
        volume = wait_for_status(client, url, headers(project, USER), "available")
    assert (volume["name"], volume["description"], volume["size"]) == (name, "d 1", 2)
    assert volume["metadata"] == {"a": "1", "b": "2"}


def test_cli_show_by_id_and_by_name(cli: CinderCli, cluster: Cluster, project: str) -> None:
    name = unique("cli-show")
    volume = rest_volume(cluster, project, USER, name, {"k": "v"})
    by_id = parse_property_table(cli.ok("show", volume["id"]))
    assert by_id["id"] == volume["id"] and by_id["name"] == name
    assert by_id["status"] == "available" and by_id["size"] == "1"
    assert by_id["metadata"] == "k : v"  # the CLI prints metadata as `key : value` lines
    by_name = parse_property_table(cli.ok("show", name))
    assert by_name["id"] == volume["id"]


def test_cli_show_unknown_fails(cli: CinderCli) -> None:
    done = cli.run("show", unique("no-such-volume"))
    assert done.returncode == 1, exchanges(done.stderr)
    assert "ERROR: No volume with a name or ID of" in done.stderr


def test_cli_cannot_reach_another_projects_volume(
    cli: CinderCli, cluster: Cluster, other_project: str
) -> None:
    # By name the CLI lists with all_tenants=1, which a non-admin must not be granted.
    theirs = rest_volume(cluster, other_project, USER, unique("cli-theirs"))
    for name_or_id in (theirs["id"], theirs["name"]):
        done = cli.run("show", name_or_id)
        assert done.returncode == 1, exchanges(done.stderr)
        assert f"ERROR: No volume with a name or ID of '{name_or_id}' exists." in done.stderr
    done = cli.run("delete", theirs["id"])
    assert done.returncode == 1, exchanges(done.stderr)
    assert rest_show(cluster, other_project, theirs["id"])["status"] == "available"


def test_cli_admin_lists_all_tenants(cluster: Cluster, project: str, tmp_path: Path) -> None:
    theirs = rest_volume(cluster, project, USER, unique("cli-admin-sees"))
    admin = CinderCli(cluster.rest_url, "admin", uuid.uuid4().hex, tmp_path)
    rows = {r["ID"]: r for r in parse_list_table(admin.ok("list", "--all-tenants"))}
    assert rows[theirs["id"]]["Tenant ID"] == project
    assert rows[theirs["id"]]["Name"] == theirs["name"]
    assert theirs["id"] not in {r["ID"] for r in parse_list_table(admin.ok("list"))}


def test_cli_list(cli: CinderCli, cluster: Cluster, project: str, other_project: str) -> None:
    mine = rest_volume(cluster, project, USER, unique("cli-list"))
    theirs = rest_volume(cluster, other_project, USER, unique("cli-list-other"))
    rows = parse_list_table(cli.ok("list"))
    assert [(r["ID"], r["Name"], r["Status"], r["Size"]) for r in rows] == [
        (mine["id"], mine["name"], "available", "1")
    ]
    assert theirs["id"] not in {r["ID"] for r in rows}


def test_cli_list_filters_sort_and_count(cli: CinderCli, cluster: Cluster, project: str) -> None:
    a = rest_volume(cluster, project, USER, unique("cli-a"), {"env": "prod"})
    b = rest_volume(cluster, project, USER, unique("cli-b"))

    def ids(*args: str) -> list[str]:
        return [r["ID"] for r in parse_list_table(cli.ok("list", *args))]

    assert ids("--name", a["name"]) == [a["id"]]
    assert ids("--metadata", "env=prod") == [a["id"]]  # sent as metadata={'env': 'prod'}
    assert ids("--status", "available", "--sort", "name:asc") == [a["id"], b["id"]]
    assert ids("--sort", "name:desc") == [b["id"], a["id"]]  # sent as sort=display_name:desc
    assert ids("--sort", "name:asc", "--limit", "1") == [a["id"]]
    assert "Volume in total: 2" in cli.ok("list", "--with-count")


def test_cli_rename(cli: CinderCli, cluster: Cluster, project: str) -> None:
    volume = rest_volume(cluster, project, USER, unique("cli-rename"))
    new_name = unique("cli-renamed")
    cli.ok("rename", volume["id"], new_name)
    assert rest_show(cluster, project, volume["id"])["name"] == new_name
    assert parse_property_table(cli.ok("show", new_name))["id"] == volume["id"]


def test_cli_metadata_set_and_unset(cli: CinderCli, cluster: Cluster, project: str) -> None:
    volume = rest_volume(cluster, project, USER, unique("cli-meta"), {"keep": "1"})
    cli.ok("metadata", volume["id"], "set", "k1=v1", "k2=v2")
    assert rest_show(cluster, project, volume["id"])["metadata"] == {
        "keep": "1",
        "k1": "v1",
        "k2": "v2",
    }
    cli.ok("metadata", volume["id"], "unset", "k1", "keep")
    assert rest_show(cluster, project, volume["id"])["metadata"] == {"k2": "v2"}


def test_cli_metadata_unset_is_conditional(cli: CinderCli, cluster: Cluster, project: str) -> None:
    """From 3.15 `metadata unset` reads the metadata, then PUTs the rest back with If-Match set
    to the ETag it read (Cinder's optimistic locking). Without an ETag, --debug logs
    `If-Match: None` and requests drops the header: the PUT silently becomes unconditional."""
    volume = rest_volume(cluster, project, USER, unique("cli-etag"), {"a": "1", "b": "2"})
    done = cli.run("metadata", volume["id"], "unset", "a")
    log = exchanges(done.stderr)
    assert done.returncode == 0, log
    read = re.search(r"^RESP: \[200\] .*\betag: (\S+)", log, re.MULTILINE | re.IGNORECASE)
    assert read is not None, f"GET /volumes/{{id}}/metadata answered no ETag:\n{log}"
    put = re.search(r'^REQ: curl .*-X PUT .*-H "If-Match: ([^"]*)"', log, re.MULTILINE)
    assert put is not None and put.group(1) == read.group(1), log
    assert rest_show(cluster, project, volume["id"])["metadata"] == {"b": "2"}


def test_cli_delete(cli: CinderCli, cluster: Cluster, project: str) -> None:
    volume = rest_volume(cluster, project, USER, unique("cli-delete"))
    out = cli.ok("delete", volume["id"])
    assert f"Request to delete volume {volume['id']} has been accepted." in out
    rest_wait_gone(cluster, project, volume["id"])
    assert volume["id"] not in {r["ID"] for r in parse_list_table(cli.ok("list"))}


# --- python-cinderclient: the Python API -------------------------------------------------


@pytest.fixture()
def cinder(cluster: Cluster, project: str) -> Any:
    return cinderclient_api(cluster, USER, project)


def wait_api_status(cinder: Any, volume_id: str, wanted: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        volume = cinder.volumes.get(volume_id)
        if volume.status == wanted:
            return volume
        assert time.monotonic() < deadline, f"volume never became {wanted}: {volume.status}"
        time.sleep(0.05)


def test_api_create_get_list(cinder: Any, cluster: Cluster, project: str) -> None:
    name = unique("api-create")
    created = cinder.volumes.create(1, name=name, description="d", metadata={"a": "b"})
    assert created.name == name and created.size == 1
    volume = wait_api_status(cinder, created.id, "available")
    assert (volume.name, volume.description, volume.metadata) == (name, "d", {"a": "b"})
    assert volume.bootable == "false" and volume.attachments == []
    assert [v.id for v in cinder.volumes.list()] == [created.id]
    assert [v.id for v in cinder.volumes.list(search_opts={"name": name})] == [created.id]
    assert cinder.volumes.list(search_opts={"name": "nothing-by-that-name"}) == []
    assert rest_show(cluster, project, created.id)["user_id"] == USER


def test_api_update(cinder: Any, cluster: Cluster, project: str) -> None:
    volume = rest_volume(cluster, project, USER, unique("api-update"))
    new_name = unique("api-renamed")
    cinder.volumes.update(volume["id"], name=new_name, description="new description")
    shown = cinder.volumes.get(volume["id"])
    assert (shown.name, shown.description) == (new_name, "new description")
    assert rest_show(cluster, project, volume["id"])["name"] == new_name


def test_api_metadata(cinder: Any, cluster: Cluster, project: str) -> None:
    volume = rest_volume(cluster, project, USER, unique("api-meta"), {"keep": "1"})
    cinder.volumes.set_metadata(volume["id"], {"k1": "v1", "k2": "v2"})
    assert cinder.volumes.get(volume["id"]).metadata == {"keep": "1", "k1": "v1", "k2": "v2"}
    # At 3.15+ this reads the metadata (ETag) and PUTs the rest back with If-Match.
    cinder.volumes.delete_metadata(volume["id"], ["k1"])
    assert rest_show(cluster, project, volume["id"])["metadata"] == {"keep": "1", "k2": "v2"}


def test_api_delete(cinder: Any, cluster: Cluster, project: str) -> None:
    from cinderclient import exceptions

    volume = rest_volume(cluster, project, USER, unique("api-delete"))
    cinder.volumes.delete(volume["id"])
    rest_wait_gone(cluster, project, volume["id"])
    with pytest.raises(exceptions.NotFound):
        cinder.volumes.get(volume["id"])


# --- openstacksdk ------------------------------------------------------------------------


@pytest.fixture()
def sdk(cluster: Cluster) -> Iterator[Any]:
    connection = sdk_connection(cluster)
    yield connection
    connection.close()
    delete_all_volumes(cluster, SDK_PROJECT, SDK_PROJECT)


def test_sdk_create_get_list_delete(sdk: Any, cluster: Cluster) -> None:
    name = unique("sdk")
    created = sdk.block_storage.create_volume(size=1, name=name)
    assert created.name == name and created.size == 1
    volume = sdk.block_storage.wait_for_status(created, status="available", wait=30, interval=0.2)
    assert volume.id == created.id

    got = sdk.block_storage.get_volume(created.id)
    assert (got.id, got.name, got.status, got.size) == (created.id, name, "available", 1)
    assert got.project_id == SDK_PROJECT

    listed = {v.id: v for v in sdk.block_storage.volumes()}
    assert created.id in listed and listed[created.id].name == name
    assert rest_show(cluster, SDK_PROJECT, created.id)["name"] == name

    sdk.block_storage.delete_volume(created.id)
    sdk.block_storage.wait_for_delete(got, interval=0.2, wait=30)
    assert rest_get(cluster, SDK_PROJECT, created.id).status_code == 404
    assert created.id not in {v.id for v in sdk.block_storage.volumes()}


def test_sdk_cloud_layer(sdk: Any, cluster: Cluster) -> None:
    """The cloud layer (what Ansible's openstack.cloud modules call) finds volumes by name."""
    name = unique("sdk-cloud")
    created = sdk.create_volume(size=1, name=name, description="c", wait=True, timeout=30)
    assert (created.name, created.status, created.size) == (name, "available", 1)
    assert sdk.get_volume(name).id == created.id
    assert sdk.get_volume_by_id(created.id).name == name
    assert created.id in {v.id for v in sdk.list_volumes()}
    assert sdk.delete_volume(name, wait=True, timeout=30) is True
    assert rest_get(cluster, SDK_PROJECT, created.id).status_code == 404
    assert sdk.get_volume(name) is None
