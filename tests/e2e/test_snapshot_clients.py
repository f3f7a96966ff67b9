"""The real, unmodified clients on snapshots: python-cinderclient's ``cinder snapshot-create``,
``snapshot-list``, ``snapshot-show`` and ``snapshot-delete`` (noauth, as test_clients drives
them) and python-openstackclient's ``openstack volume snapshot create/show/list/delete``
(Keystone, as test_openstackclient drives it). Effects are checked over plain REST or through
the client's own show, never by exit codes alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.client_helpers import (
    CinderCli,
    delete_all_volumes,
    parse_list_table,
    parse_property_table,
    rest_volume,
)
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status
from tests.e2e.test_openstackclient import openstack, osc_env

__all__ = ["osc_env"]  # the fixture, shared with test_openstackclient

USER = "snap-cli-user"


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_cinder_snapshot_create_list_delete(cluster: Cluster, project: str, tmp_path: Path) -> None:
    cli = CinderCli(rest_url=cluster.rest_url, user=USER, project=project, home=tmp_path)
    volume = rest_volume(cluster, project, USER, "snap-cli-vol")
    created = parse_property_table(
        cli.ok("snapshot-create", "--name", "cli-snap", "--metadata", "k=v", volume["id"])
    )
    snapshot_id = created["id"]
    assert created["name"] == "cli-snap"
    assert created["volume_id"] == volume["id"]
    url = f"{cluster.rest_url}/v3/{project}/snapshots/{snapshot_id}"
    hdrs = headers(project, USER)
    with httpx.Client(timeout=60) as client:
        shown = wait_for_status(client, url, hdrs, "available", timeout=60, resource="snapshot")
        assert shown["metadata"] == {"k": "v"}
        listed = parse_list_table(cli.ok("snapshot-list"))
        assert [(r["ID"], r["Status"], r["Name"]) for r in listed] == [
            (snapshot_id, "available", "cli-snap")
        ]
        by_volume = parse_list_table(cli.ok("snapshot-list", "--volume-id", volume["id"]))
        assert [r["ID"] for r in by_volume] == [snapshot_id]
        details = parse_property_table(cli.ok("snapshot-show", snapshot_id))
        assert details["os-extended-snapshot-attributes:progress"] == "100%"
        cli.ok("snapshot-delete", snapshot_id)
        assert wait_for_404(client, url, hdrs, timeout=60).status_code == 404
    assert parse_list_table(cli.ok("snapshot-list")) == []
    delete_all_volumes(cluster, project, USER)


def test_openstack_volume_snapshot(osc_env: dict[str, str]) -> None:
    volume = openstack(osc_env, "volume", "create", "--size", "1", "osc-snap-vol", "-f", "json",
                       user="osc-user")  # fmt: skip
    volume_id = volume["id"]

    def volume_available() -> bool:
        shown = openstack(osc_env, "volume", "show", volume_id, "-f", "json", user="osc-user")
        return bool(shown["status"] == "available")

    _until(volume_available, "the volume")
    created = openstack(osc_env, "volume", "snapshot", "create", "--volume", volume_id,
                        "--description", "by osc", "osc-snap", "-f", "json",
                        user="osc-user")  # fmt: skip
    assert created["name"] == "osc-snap"
    snapshot_id = created["id"]

    def snapshot_available() -> bool:
        shown = openstack(osc_env, "volume", "snapshot", "show", snapshot_id, "-f", "json",
                          user="osc-user")  # fmt: skip
        return bool(shown["status"] == "available")

    _until(snapshot_available, "the snapshot")
    shown = openstack(osc_env, "volume", "snapshot", "show", "osc-snap", "-f", "json",
                      user="osc-user")  # fmt: skip
    assert (shown["id"], shown["description"], shown["volume_id"]) == (
        snapshot_id, "by osc", volume_id,
    )  # fmt: skip
    listed = openstack(osc_env, "volume", "snapshot", "list", "-f", "json", user="osc-user")
    assert snapshot_id in [s["ID"] for s in listed]
    openstack(osc_env, "volume", "snapshot", "delete", snapshot_id, user="osc-user")

    def snapshot_gone() -> bool:
        listed = openstack(osc_env, "volume", "snapshot", "list", "-f", "json", user="osc-user")
        return snapshot_id not in [s["ID"] for s in listed]

    _until(snapshot_gone, "the snapshot's delete")
    openstack(osc_env, "volume", "delete", volume_id, user="osc-user")
