"""The single-node Ceph that deploy/ceph starts for the RBD driver: healthy, the pool and the
cindermesh client usable from the CLI and the Python bindings, ``up`` idempotent and printing what
a client needs, the OSD stopped and started for fault tests, a restart keeping the images."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.ceph.ceph_cluster import REPO, Ceph, start_ceph, stop_ceph
from tests.e2e.ceph import connect

GiB = 1024**3


@pytest.fixture()
def ioctx(ceph: Ceph) -> Iterator[Any]:
    cluster = connect(ceph)
    try:
        with cluster.open_ioctx(ceph.pool) as opened:
            yield opened
    finally:
        cluster.shutdown()


def image_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def test_cluster_is_healthy(ceph: Ceph) -> None:
    status = ceph.ceph_json("status")
    assert status["health"]["status"] in ("HEALTH_OK", "HEALTH_WARN"), status["health"]
    assert status["osdmap"]["num_up_osds"] == 1
    assert status["mgrmap"]["available"] is True
    addrs = ceph.ceph_json("mon", "dump")["mons"][0]["public_addrs"]["addrvec"]
    assert [a["type"] for a in addrs] == ["v2"]  # msgr v2 only, on a free port


def test_up_again_reuses_it_and_prints_what_a_client_needs(ceph: Ceph) -> None:
    done = subprocess.run(
        [str(REPO / "deploy" / "ceph" / "up"), str(ceph.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.splitlines() == [
        f"CEPH_CONF={ceph.conf}",
        f"CEPH_KEYRING={ceph.keyring}",
        "CEPH_CLIENT=cinder",
        "CEPH_POOL=volumes",
    ]
    assert ceph.pid("mon") is not None and ceph.port == int((ceph.state_dir / "port").read_text())


def test_rbd_cli_with_the_cinder_keyring(ceph: Ceph) -> None:
    env = ceph.env()
    base = ["timeout", "30", "rbd", "--conf", env["CEPH_CONF"], "--keyring", env["CEPH_KEYRING"]]
    base += ["--id", env["CEPH_CLIENT"]]
    name = image_name()
    subprocess.run([*base, "create", "--size", "64M", f"{env['CEPH_POOL']}/{name}"], check=True)
    listed = subprocess.run([*base, "ls", env["CEPH_POOL"]], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout.split()
    subprocess.run([*base, "rm", "--no-progress", f"{env['CEPH_POOL']}/{name}"], check=True)


def test_cinder_client_is_confined_to_its_pool(ceph: Ceph) -> None:
    caps = ceph.ceph_json("auth", "get", "client.cinder")[0]["caps"]
    assert caps == {"mgr": "profile rbd pool=volumes", "mon": "profile rbd",
                    "osd": "profile rbd pool=volumes"}  # fmt: skip


def test_bindings_create_write_and_remove_an_image(ceph: Ceph, ioctx: Any) -> None:
    import rbd  # type: ignore[import-not-found,unused-ignore]

    name = image_name()
    rbd.RBD().create(ioctx, name, GiB, old_format=False)
    assert name in rbd.RBD().list(ioctx)
    with rbd.Image(ioctx, name) as image:
        assert image.size() == GiB
        image.write(b"x" * 65536, 0)
        assert image.read(0, 4) == b"xxxx"
    # ceph df shows the pool and, with the mgr's 1 s stats period, its data soon.
    deadline = time.monotonic() + 20
    while True:
        pools = {p["name"]: p for p in ceph.ceph_json("df")["pools"]}
        assert "volumes" in pools
        if pools["volumes"]["stats"]["stored"] >= 65536 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert pools["volumes"]["stats"]["stored"] >= 65536
    rbd.RBD().remove(ioctx, name)
    assert name not in rbd.RBD().list(ioctx)


def test_stopped_osd_times_out_io_and_start_osd_brings_it_back(ceph: Ceph, ioctx: Any) -> None:
    import rbd

    kept = image_name()
    rbd.RBD().create(ioctx, kept, GiB)
    ceph.stop_osd()
    try:
        assert not ceph.osd_running()
        assert ceph.ceph_json("osd", "stat")["num_up_osds"] == 0
        impatient = connect(ceph, rados_osd_op_timeout="2")
        try:
            with impatient.open_ioctx(ceph.pool) as blocked:
                started = time.monotonic()
                with pytest.raises(rbd.Timeout):
                    rbd.RBD().create(blocked, image_name(), GiB)
                assert time.monotonic() - started < 15
        finally:
            impatient.shutdown()
    finally:
        ceph.start_osd()
    assert ceph.osd_running()
    assert kept in rbd.RBD().list(ioctx)
    rbd.RBD().remove(ioctx, kept)


def test_paused_osd_hangs_io_until_resumed(ceph: Ceph, ioctx: Any) -> None:
    import rbd

    ceph.pause_osd()
    try:
        assert ceph.ceph_json("osd", "stat")["num_up_osds"] == 1  # the mon does not notice
        impatient = connect(ceph, rados_osd_op_timeout="2")
        try:
            with impatient.open_ioctx(ceph.pool) as blocked, pytest.raises(rbd.Timeout):
                rbd.RBD().create(blocked, image_name(), GiB)
        finally:
            impatient.shutdown()
    finally:
        ceph.resume_osd()
    name = image_name()
    rbd.RBD().create(ioctx, name, GiB)
    rbd.RBD().remove(ioctx, name)


def test_down_and_up_keep_the_images(ceph: Ceph) -> None:
    import rbd

    name = image_name()
    ceph.rbd("create", "--size", "128M", f"volumes/{name}")
    assert stop_ceph(ceph.state_dir)
    assert ceph.pid("mon") is None and ceph.pid("osd") is None and ceph.pid("mgr") is None
    again = start_ceph(ceph.state_dir)
    assert (again.port, again.fsid) == (ceph.port, ceph.fsid)
    cluster = connect(ceph)
    try:
        with cluster.open_ioctx(ceph.pool) as ioctx:
            assert name in rbd.RBD().list(ioctx)
            rbd.RBD().remove(ioctx, name)
    finally:
        cluster.shutdown()
