"""The RBD driver's operations against a real Ceph (the ``ceph`` fixture: deploy/ceph), each
checked with the ``rbd`` CLI (``rbd info``, ``rbd snap ls``, ``rbd children``). No mocks."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cindermesh.settings import BackendSettings, DriverKind
from services.volume.drivers.base import SnapshotRef, SourceVolumeRef, VolumeIsBusy
from services.volume.drivers.rbd import GIB, RbdDriver
from tests.e2e.ceph import Ceph, connect

FEATURES = ["deep-flatten", "exclusive-lock", "fast-diff", "layering", "object-map"]


def _backend(ceph: Ceph, **more: Any) -> BackendSettings:
    return BackendSettings(
        name="rbd-test",
        driver=DriverKind.RBD,
        rbd_ceph_conf=str(ceph.conf),
        rbd_keyring=str(ceph.keyring),
        rbd_user=ceph.client,
        rbd_pool=ceph.pool,
        rados_connect_timeout=5.0,
        report_interval=0.0,
        **more,
    )


async def _driver(ceph: Ceph, **more: Any) -> RbdDriver:
    driver = RbdDriver(_backend(ceph, **more))
    await driver.do_setup()
    assert driver.backend_state == "up"
    return driver


@pytest.fixture
async def driver(ceph: Ceph) -> AsyncIterator[RbdDriver]:
    d = await _driver(ceph)
    yield d
    await d.close()


def _id() -> str:
    return uuid.uuid4().hex[:12]


def _info(ceph: Ceph, image: str) -> dict[str, Any] | None:
    names = json.loads(ceph.rbd("ls", ceph.pool, "--format", "json"))
    if image not in names:
        return None
    info: dict[str, Any] = json.loads(ceph.rbd("info", f"{ceph.pool}/{image}", "--format", "json"))
    return info


def _snaps(ceph: Ceph, image: str) -> list[str]:
    snaps = json.loads(ceph.rbd("snap", "ls", f"{ceph.pool}/{image}", "--format", "json"))
    return [s["name"] for s in snaps]


def _children(ceph: Ceph, image: str, snap: str) -> list[str]:
    children = json.loads(ceph.rbd("children", f"{ceph.pool}/{image}@{snap}", "--format", "json"))
    return [c["image"] for c in children]


def _trash(ceph: Ceph) -> list[str]:
    return [t["name"] for t in json.loads(ceph.rbd("trash", "ls", ceph.pool, "--format", "json"))]


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


async def test_create_is_thin_with_cinders_features_and_idempotent(
    ceph: Ceph, driver: RbdDriver
) -> None:
    vid = _id()
    await driver.create_volume(vid, 3)
    await driver.create_volume(vid, 3)  # again: success
    info = _info(ceph, f"volume-{vid}")
    assert info is not None
    assert info["size"] == 3 * GIB
    assert info["order"] == 22
    assert sorted(info["features"]) == FEATURES
    du = json.loads(ceph.rbd("du", f"{ceph.pool}/volume-{vid}", "--format", "json"))
    assert du["images"][0]["used_size"] == 0  # thin
    assert vid in await driver.list_volumes()
    await driver.delete_volume(vid)
    assert _info(ceph, f"volume-{vid}") is None
    await driver.delete_volume(vid)  # already gone: success
    assert vid not in await driver.list_volumes()


async def test_delete_of_an_image_in_use_is_volume_is_busy_and_keeps_it(
    ceph: Ceph, driver: RbdDriver, image_io: Any
) -> None:
    vid = _id()
    await driver.create_volume(vid, 1)
    image = image_io(f"volume-{vid}")  # a watcher, as an attached client
    try:
        with pytest.raises(VolumeIsBusy):
            await driver.delete_volume(vid)
        assert _info(ceph, f"volume-{vid}") is not None
    finally:
        image.close()
    await driver.delete_volume(vid)
    assert _info(ceph, f"volume-{vid}") is None


async def test_snapshot_create_and_delete(ceph: Ceph, driver: RbdDriver) -> None:
    vid = _id()
    await driver.create_volume(vid, 1)
    snap = SnapshotRef(id=_id(), volume_id=vid, volume_size_gb=1)
    await driver.create_snapshot(snap)
    await driver.create_snapshot(snap)  # again: success
    snaps = json.loads(ceph.rbd("snap", "ls", f"{ceph.pool}/volume-{vid}", "--format", "json"))
    assert [(s["name"], s["protected"]) for s in snaps] == [(snap.name, "true")]
    await driver.delete_snapshot(snap)
    await driver.delete_snapshot(snap)  # already gone: success
    assert _snaps(ceph, f"volume-{vid}") == []
    await driver.delete_volume(vid)


async def test_volume_from_snapshot_is_a_clone_grown_to_its_size(
    ceph: Ceph, driver: RbdDriver, image_io: Any
) -> None:
    src, dst = _id(), _id()
    await driver.create_volume(src, 1)
    image = image_io(f"volume-{src}")
    image.write(b"snapshot data", 4096)
    image.close()
    snap = SnapshotRef(id=_id(), volume_id=src, volume_size_gb=1)
    await driver.create_snapshot(snap)
    await driver.create_volume_from_snapshot(dst, 2, snap)
    info = _info(ceph, f"volume-{dst}")
    assert info is not None
    assert info["size"] == 2 * GIB
    assert info["parent"]["image"] == f"volume-{src}"
    assert info["parent"]["snapshot"] == snap.name
    assert _children(ceph, f"volume-{src}", snap.name) == [f"volume-{dst}"]
    clone = image_io(f"volume-{dst}")
    assert clone.read(4096, 13) == b"snapshot data"
    clone.close()
    # The snapshot has a child: deleting it flattens the child first (Cinder), then removes it.
    await driver.delete_snapshot(snap)
    assert _snaps(ceph, f"volume-{src}") == []
    assert "parent" not in (_info(ceph, f"volume-{dst}") or {})
    for vid in (dst, src):
        await driver.delete_volume(vid)


async def test_volume_from_snapshot_flattened_when_configured(ceph: Ceph) -> None:
    driver = await _driver(ceph, rbd_flatten_volume_from_snapshot=True)
    try:
        src, dst = _id(), _id()
        await driver.create_volume(src, 1)
        snap = SnapshotRef(id=_id(), volume_id=src, volume_size_gb=1)
        await driver.create_snapshot(snap)
        await driver.create_volume_from_snapshot(dst, 1, snap)
        assert "parent" not in (_info(ceph, f"volume-{dst}") or {"parent": None})
        assert _children(ceph, f"volume-{src}", snap.name) == []
        await driver.delete_snapshot(snap)
        for vid in (dst, src):
            await driver.delete_volume(vid)
    finally:
        await driver.close()


async def test_clone_of_a_volume_and_delete_with_children(ceph: Ceph, driver: RbdDriver) -> None:
    src, dst = _id(), _id()
    await driver.create_volume(src, 1)
    await driver.create_cloned_volume(dst, 2, SourceVolumeRef(id=src, size_gb=1))
    clone_snap = f"volume-{dst}.clone_snap"
    info = _info(ceph, f"volume-{dst}")
    assert info is not None and info["size"] == 2 * GIB
    assert info["parent"]["snapshot"] == clone_snap
    assert _children(ceph, f"volume-{src}", clone_snap) == [f"volume-{dst}"]
    # The source has a clone: kept as volume-<id>.deleted, as Cinder does.
    await driver.delete_volume(src)
    assert _info(ceph, f"volume-{src}") is None
    assert _children(ceph, f"volume-{src}.deleted", clone_snap) == [f"volume-{dst}"]
    assert src not in await driver.list_volumes()
    # Its last clone deleted, the deleted parent goes with it.
    await driver.delete_volume(dst)
    assert _info(ceph, f"volume-{dst}") is None
    assert _info(ceph, f"volume-{src}.deleted") is None


async def test_clone_depth_limit_flattens(ceph: Ceph) -> None:
    driver = await _driver(ceph, rbd_max_clone_depth=1)
    try:
        a, b, c = _id(), _id(), _id()
        await driver.create_volume(a, 1)
        await driver.create_cloned_volume(b, 1, SourceVolumeRef(id=a, size_gb=1))
        assert (_info(ceph, f"volume-{b}") or {})["parent"]["image"] == f"volume-{a}"
        # b has one ancestor: a clone of it reaches the limit and is flattened.
        await driver.create_cloned_volume(c, 1, SourceVolumeRef(id=b, size_gb=1))
        assert "parent" not in (_info(ceph, f"volume-{c}") or {"parent": None})
        assert f"volume-{c}.clone_snap" not in _snaps(ceph, f"volume-{b}")
        for vid in (c, b, a):
            await driver.delete_volume(vid)
            assert _info(ceph, f"volume-{vid}") is None
    finally:
        await driver.close()


async def test_full_copy_when_max_clone_depth_is_zero(ceph: Ceph) -> None:
    driver = await _driver(ceph, rbd_max_clone_depth=0)
    try:
        a, b = _id(), _id()
        await driver.create_volume(a, 1)
        await driver.create_cloned_volume(b, 2, SourceVolumeRef(id=a, size_gb=1))
        info = _info(ceph, f"volume-{b}") or {}
        assert "parent" not in info and info["size"] == 2 * GIB
        assert _snaps(ceph, f"volume-{a}") == []
        for vid in (b, a):
            await driver.delete_volume(vid)
    finally:
        await driver.close()


async def test_delete_of_a_volume_with_snapshots_moves_it_to_the_trash(
    ceph: Ceph, driver: RbdDriver
) -> None:
    vid = _id()
    await driver.create_volume(vid, 1)
    await driver.create_snapshot(SnapshotRef(id=_id(), volume_id=vid, volume_size_gb=1))
    await driver.delete_volume(vid)
    assert _info(ceph, f"volume-{vid}") is None
    assert f"volume-{vid}" in _trash(ceph)


async def test_extend_and_revert(ceph: Ceph, driver: RbdDriver, image_io: Any) -> None:
    vid = _id()
    await driver.create_volume(vid, 1)
    image = image_io(f"volume-{vid}")
    image.write(b"before", 0)
    image.close()
    snap = SnapshotRef(id=_id(), volume_id=vid, volume_size_gb=1)
    await driver.create_snapshot(snap)
    image = image_io(f"volume-{vid}")
    image.write(b"after!", 0)
    image.close()
    await driver.extend_volume(vid, 4)
    assert (_info(ceph, f"volume-{vid}") or {})["size"] == 4 * GIB
    await driver.revert_to_snapshot(vid, snap)
    image = image_io(f"volume-{vid}")
    assert image.read(0, 6) == b"before"
    image.close()
    await driver.delete_snapshot(snap)
    await driver.delete_volume(vid)


async def test_initialize_connection_is_cinders_rbd_data(ceph: Ceph, driver: RbdDriver) -> None:
    vid = _id()
    await driver.create_volume(vid, 1)
    info = (await driver.initialize_connection(vid, {"host": "compute-1"})).as_dict()
    assert info == {
        "driver_volume_type": "rbd",
        "data": {
            "name": f"{ceph.pool}/volume-{vid}",
            "hosts": ["127.0.0.1"],
            "ports": [str(ceph.port)],
            "cluster_name": "ceph",
            "auth_enabled": True,
            "auth_username": ceph.client,
            "secret_type": "ceph",
            "secret_uuid": None,
            "volume_id": vid,
            "discard": True,
        },
    }
    await driver.terminate_connection(vid)
    await driver.delete_volume(vid)


async def test_capacity_is_the_pools_as_cinder_reports_it(ceph: Ceph, driver: RbdDriver) -> None:
    vid = _id()
    await driver.create_volume(vid, 7)
    stats = await driver.get_capacity()
    df = ceph.ceph_json("df")
    pool = next(p for p in df["pools"] if p["name"] == ceph.pool)["stats"]
    assert stats.free_capacity_gb == pytest.approx(pool["max_avail"] / GIB, abs=0.02)
    assert stats.total_capacity_gb == pytest.approx(
        (pool["max_avail"] + pool["stored"]) / GIB, abs=0.02
    )
    sizes = [
        i["size"]
        for i in json.loads(ceph.rbd("ls", "-l", ceph.pool, "--format", "json"))
        if "snapshot" not in i
    ]
    assert stats.provisioned_capacity_gb == -(-sum(sizes) // GIB)
    assert stats.allocated_capacity_gb >= 7
    assert stats.thin_provisioning_support and not stats.thick_provisioning_support
    assert stats.backend_state == "up"
    fsid = ceph.ceph("fsid").strip()
    assert stats.location_info == f"ceph:{ceph.conf}:{fsid}:{ceph.client}:{ceph.pool}"
    await driver.delete_volume(vid)
