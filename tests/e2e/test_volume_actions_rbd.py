"""Extend and revert over REST on an RBD backend on the real Ceph of the ``ceph`` fixture: the
image's size, snapshots and content are checked on the cluster, and the quota after them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.ceph import Ceph, connect
from tests.e2e.cluster import Cluster
from tests.e2e.test_rbd_backend import make_rbd_cluster
from tests.e2e.test_volume_actions import Api, bad_request, take_snapshot, wait_snapshot

GIB = 1024**3


@pytest.fixture(scope="module")
def rbd_cluster(tmp_path_factory: pytest.TempPathFactory, ceph: Ceph) -> Iterator[Cluster]:
    cluster = make_rbd_cluster(tmp_path_factory.mktemp("rbd-actions"), ceph)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def api(rbd_cluster: Cluster, project: str) -> Iterator[Api]:
    with httpx.Client(timeout=30.0) as client:
        yield Api(client, rbd_cluster, project)


@pytest.fixture
def image_io(ceph: Ceph) -> Iterator[Any]:
    """Opens images as a client would (rados/rbd as client.cinder)."""
    import rbd  # type: ignore[import-not-found,unused-ignore]

    cluster = connect(ceph)
    ioctx = cluster.open_ioctx(ceph.pool)

    def open_image(name: str) -> Any:
        return rbd.Image(ioctx, name)

    yield open_image
    ioctx.close()
    cluster.shutdown()


def _info(ceph: Ceph, volume_id: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(
        ceph.rbd("info", f"{ceph.pool}/volume-{volume_id}", "--format", "json")
    )
    return info


def _snaps(ceph: Ceph, volume_id: str) -> list[str]:
    listed = ceph.rbd("snap", "ls", f"{ceph.pool}/volume-{volume_id}", "--format", "json")
    return [s["name"] for s in json.loads(listed)]


def test_extend_grows_the_rbd_image(api: Api, ceph: Ceph) -> None:
    api.set_quota(gigabytes=5)
    vid = api.create(size=1)["id"]
    assert _info(ceph, vid)["size"] == 1 * GIB
    assert api.action(vid, {"os-extend": {"new_size": 3}}).status_code == 202
    assert api.wait(vid, "available")["size"] == 3
    assert _info(ceph, vid)["size"] == 3 * GIB
    assert api.usage("gigabytes") == (3, 0)
    over = api.action(vid, {"os-extend": {"new_size": 6}})
    assert over.status_code == 413
    assert _info(ceph, vid)["size"] == 3 * GIB
    assert api.usage("gigabytes") == (3, 0)


def test_revert_rolls_the_rbd_image_back(api: Api, ceph: Ceph, image_io: Any) -> None:
    vid = api.create(size=1)["id"]
    image = image_io(f"volume-{vid}")
    image.write(b"before", 0)
    image.close()
    snapshot_id = take_snapshot(api, vid)
    assert _snaps(ceph, vid) == [f"snapshot-{snapshot_id}"]
    image = image_io(f"volume-{vid}")
    image.write(b"after!", 0)
    image.close()
    reverted = api.action(vid, {"revert": {"snapshot_id": snapshot_id}}, version="3.40")
    assert reverted.status_code == 202, reverted.text
    api.wait(vid, "available")
    wait_snapshot(api, snapshot_id, "available")
    image = image_io(f"volume-{vid}")
    assert image.read(0, 6) == b"before"
    image.close()
    assert _snaps(ceph, vid) == [f"snapshot-{snapshot_id}"]
    assert _info(ceph, vid)["size"] == 1 * GIB
    # Extended past the snapshot's size: Cinder refuses the revert.
    assert api.action(vid, {"os-extend": {"new_size": 2}}).status_code == 202
    api.wait(vid, "available")
    bad_request(
        api.action(vid, {"revert": {"snapshot_id": snapshot_id}}, version="3.40"),
        f"Can't revert volume {vid} to its latest snapshot {snapshot_id}. The volume size must "
        "be equal to the snapshot size.",
    )
