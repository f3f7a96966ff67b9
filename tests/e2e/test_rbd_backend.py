"""The product with an RBD backend on a real Ceph (the ``ceph`` fixture, deploy/ceph): volumes
over REST become RBD images, capacity comes from the pool, and faults of the cluster end as
Cinder's would, without restarting the volume service. The last test stops and restarts the
whole Ceph cluster, so it stays last."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.ceph.ceph_cluster import start_ceph, stop_ceph
from tests.e2e.ceph import Ceph
from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import db_rows, headers, wait_for_404, wait_for_status

GIB = 1024**3
BACKEND = "rbd-1"
REPORT_INTERVAL = 2.0
FEATURES = ["deep-flatten", "exclusive-lock", "fast-diff", "layering", "object-map"]


def make_rbd_cluster(base: Path, ceph: Ceph) -> Cluster:
    """``tests.e2e.cluster.make_cluster``'s product with one ``rbd`` backend on ``ceph``."""
    backend = f"""name = "{BACKEND}"
driver = "rbd"
report_interval = {REPORT_INTERVAL}
rbd_ceph_conf = "{ceph.conf}"
rbd_keyring = "{ceph.keyring}"
rbd_user = "{ceph.client}"
rbd_pool = "{ceph.pool}"
rados_connect_timeout = 3"""
    return make_cluster(base, quotas={"volumes": -1, "gigabytes": -1}, backend=backend)


@pytest.fixture(scope="module")
def rbd_cluster(tmp_path_factory: pytest.TempPathFactory, ceph: Ceph) -> Iterator[Cluster]:
    cluster = make_rbd_cluster(tmp_path_factory.mktemp("rbd-cluster"), ceph)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _images(ceph: Ceph) -> list[str]:
    names: list[str] = json.loads(ceph.rbd("ls", ceph.pool, "--format", "json"))
    return names


def _info(ceph: Ceph, image: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(ceph.rbd("info", f"{ceph.pool}/{image}", "--format", "json"))
    return info


def _pool(client: httpx.Client, cluster: Cluster, project: str) -> dict[str, Any]:
    pools = client.get(
        f"{cluster.rest_url}/v3/{project}/scheduler-stats/get_pools?detail=True",
        headers=headers(project, user="admin"),
    ).json()["pools"]
    capabilities: dict[str, Any] = pools[0]["capabilities"]
    return capabilities


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _create(client: httpx.Client, cluster: Cluster, project: str, size: int) -> str:
    response = client.post(
        f"{cluster.rest_url}/v3/{project}/volumes",
        headers=headers(project),
        json={"volume": {"size": size, "name": "rbd-e2e"}},
    )
    assert response.status_code == 202, response.text
    volume_id: str = response.json()["volume"]["id"]
    return volume_id


def test_create_and_delete_over_rest(rbd_cluster: Cluster, ceph: Ceph) -> None:
    project = "p-rbd-1"
    with httpx.Client(timeout=30) as client:
        volume_id = _create(client, rbd_cluster, project, 2)
        url = f"{rbd_cluster.rest_url}/v3/{project}/volumes/{volume_id}"
        volume = wait_for_status(client, url, headers(project), "available", timeout=30)
        assert volume["size"] == 2
        info = _info(ceph, f"volume-{volume_id}")
        assert info["size"] == 2 * GIB
        assert sorted(info["features"]) == FEATURES
        assert client.delete(url, headers=headers(project)).status_code == 202
        assert wait_for_404(client, url, headers(project), timeout=30).status_code == 404
        assert f"volume-{volume_id}" not in _images(ceph)
        # A second delete finds nothing: Cinder's 404, and nothing changes on the cluster.
        assert client.delete(url, headers=headers(project)).status_code == 404


def test_capacity_in_get_pools_is_the_pools(rbd_cluster: Cluster, ceph: Ceph) -> None:
    project = "p-rbd-2"
    with httpx.Client(timeout=30) as client:
        volume_id = _create(client, rbd_cluster, project, 5)
        url = f"{rbd_cluster.rest_url}/v3/{project}/volumes/{volume_id}"
        wait_for_status(client, url, headers(project), "available", timeout=30)
        pool = _pool(client, rbd_cluster, project)
        assert pool["storage_protocol"] == "ceph"
        assert pool["vendor_name"] == "Open Source"
        assert pool["driver_version"] == "1.3.0"
        assert pool["volume_backend_name"] == BACKEND
        assert pool["thin_provisioning_support"] is True
        assert pool["backend_state"] == "up"
        assert pool["location_info"].startswith(f"ceph:{ceph.conf}:")
        assert pool["location_info"].endswith(f":{ceph.client}:{ceph.pool}")
        for key in ("max_over_subscription_ratio", "reserved_percentage"):
            assert key in pool

        def matches() -> bool:
            df = ceph.ceph_json("df")
            stats = next(p for p in df["pools"] if p["name"] == ceph.pool)["stats"]
            reported = _pool(client, rbd_cluster, project)
            free = stats["max_avail"] / GIB
            total = (stats["max_avail"] + stats["stored"]) / GIB
            return (
                abs(reported["free_capacity_gb"] - free) <= 0.02
                and abs(reported["total_capacity_gb"] - total) <= 0.02
                and reported["provisioned_capacity_gb"] >= 5
            )

        _until(matches, REPORT_INTERVAL * 2 + 2, "get_pools to match ceph df")
        client.delete(url, headers=headers(project))
        wait_for_404(client, url, headers(project), timeout=30)


def test_osd_down_during_a_create_ends_in_error_and_leaves_nothing(
    rbd_cluster: Cluster, ceph: Ceph
) -> None:
    project = "p-rbd-3"
    with httpx.Client(timeout=30) as client:
        ceph.stop_osd()
        try:
            volume_id = _create(client, rbd_cluster, project, 1)
            url = f"{rbd_cluster.rest_url}/v3/{project}/volumes/{volume_id}"
            volume = wait_for_status(client, url, headers(project), "error", timeout=60)
            assert volume["id"] == volume_id
            usage = db_rows(
                rbd_cluster,
                "select resource, in_use, reserved from quota_usages where project_id = ?",
                project,
            )
            assert {r: (u, res) for r, u, res in usage}.get("volumes", (0, 0)) == (0, 0)
            assert {r: (u, res) for r, u, res in usage}.get("gigabytes", (0, 0)) == (0, 0)
        finally:
            ceph.start_osd()
        _until(
            lambda: f"volume-{volume_id}" not in _images(ceph),
            30,
            "the image of the failed create to be gone",
        )
        client.delete(url, headers=headers(project))
        wait_for_404(client, url, headers(project), timeout=30)


def test_volume_service_started_with_the_cluster_down_recovers(tmp_path: Path, ceph: Ceph) -> None:
    project = "p-rbd-4"
    stop_ceph(ceph.state_dir)
    cluster = make_rbd_cluster(tmp_path, ceph)
    try:
        cluster.start()
        with httpx.Client(timeout=30) as client:
            _until(
                lambda: _pool(client, cluster, project).get("backend_state") == "down",
                15,
                "the backend to be reported down",
            )
            assert _pool(client, cluster, project)["free_capacity_gb"] == 0
            start_ceph(ceph.state_dir)
            _until(
                lambda: _pool(client, cluster, project).get("backend_state") == "up",
                30,
                "the backend to be reported up",
            )
            volume_id = _create(client, cluster, project, 1)
            url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
            wait_for_status(client, url, headers(project), "available", timeout=30)
            assert f"volume-{volume_id}" in _images(ceph)
            client.delete(url, headers=headers(project))
            wait_for_404(client, url, headers(project), timeout=30)
    finally:
        cluster.stop()
        start_ceph(ceph.state_dir)
