"""Attachments on an RBD backend on the real Ceph of the ``ceph`` fixture: Nova's sequence
(``test_attachments.Nova``) with the connection information checked against the cluster
itself, as Cinder's RBD driver builds it (cinder/volume/drivers/rbd.py ``initialize_connection``:
``name`` pool/image, the monitors of ``ceph mon dump`` split as ``_get_mon_addrs`` does,
``cluster_name``, ``auth_username``, ...) and then used as os-brick's RBD connector uses it (a
client of its own connects to those monitors as that user and opens that image); the legacy
connection; the multiattach cases and the 20 concurrent cycles (RBD reports ``multiattach``);
and ``scripts/show_nova_attach.py`` run against this product."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import test_attachments as base
from tests.e2e.ceph import Ceph, connect
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import wait_for_404
from tests.e2e.test_attachments import NOVA_ATTACH, NOVA_GET, Api, Nova, os_brick_connector
from tests.e2e.test_rbd_backend import make_rbd_cluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rbd_cluster(tmp_path_factory: pytest.TempPathFactory, ceph: Ceph) -> Iterator[Cluster]:
    cluster = make_rbd_cluster(tmp_path_factory.mktemp("rbd-attachments"), ceph)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def api(rbd_cluster: Cluster, project: str) -> Iterator[Api]:
    with httpx.Client(timeout=60.0) as client:
        yield Api(client, rbd_cluster, project)


def monitors(ceph: Ceph) -> tuple[list[str], list[str]]:
    """The cluster's monitors as Cinder's RBD driver reads them (``_get_mon_addrs``: each
    ``addr`` of ``ceph mon dump``, ``host:port/nonce``, brackets off an IPv6 host)."""
    hosts, ports = [], []
    for mon in ceph.ceph_json("mon", "dump")["mons"]:
        address = mon["addr"][: mon["addr"].rindex("/")]
        host, port = address.rsplit(":", 1)
        hosts.append(host.strip("[]"))
        ports.append(port)
    return hosts, ports


def images(ceph: Ceph) -> list[str]:
    """The pool's images, listed through the rbd bindings as client.cinder."""
    import rbd  # type: ignore[import-not-found,unused-ignore]

    cluster = connect(ceph)
    try:
        ioctx = cluster.open_ioctx(ceph.pool)
        try:
            names: list[str] = rbd.RBD().list(ioctx)
            return names
        finally:
            ioctx.close()
    finally:
        cluster.shutdown()


def expected_rbd_connection(ceph: Ceph, volume_id: str, attachment_id: str) -> dict[str, Any]:
    hosts, ports = monitors(ceph)
    return {
        "driver_volume_type": "rbd",
        "name": f"{ceph.pool}/volume-{volume_id}",
        "hosts": hosts,
        "ports": ports,
        "cluster_name": "ceph",
        "auth_enabled": True,
        "auth_username": ceph.client,
        "secret_type": "ceph",
        "secret_uuid": None,
        "volume_id": volume_id,
        "discard": True,
        "qos_specs": None,
        "access_mode": "rw",
        "encrypted": False,
        "cacheable": False,
        "attachment_id": attachment_id,
        "enforce_multipath": False,
    }


def open_as_os_brick(ceph: Ceph, data: dict[str, Any], tmp_path: Path) -> bytes:
    """What os-brick's RBD connector does with Nova's ``data``: a ceph.conf of its own with
    the monitors given, the user's keyring, then the image named ``pool/image``; writes and
    reads back a block through that connection."""
    import rados  # type: ignore[import-not-found,unused-ignore]
    import rbd

    mon_host = ",".join(f"{h}:{p}" for h, p in zip(data["hosts"], data["ports"], strict=True))
    conf = tmp_path / "os-brick.conf"
    conf.write_text(
        f"[global]\nmon_host = {mon_host}\n\n"
        f"[client.{data['auth_username']}]\nkeyring = {ceph.keyring}\n"
    )
    pool, image_name = data["name"].split("/", 1)
    cluster = rados.Rados(
        rados_id=data["auth_username"], clustername=data["cluster_name"], conffile=str(conf)
    )
    cluster.connect(timeout=10)
    try:
        ioctx = cluster.open_ioctx(pool)
        try:
            with rbd.Image(ioctx, image_name) as image:
                image.write(b"written by the attached host", 0)
                read: bytes = image.read(0, 28)
                return read
        finally:
            ioctx.close()
    finally:
        cluster.shutdown()


@pytest.mark.parametrize("get_version", NOVA_GET)
def test_nova_sequence_on_rbd_answers_the_clusters_connection(
    api: Api, ceph: Ceph, get_version: str, tmp_path: Path
) -> None:
    nova = Nova(api, get_version)
    vid = api.create_volume()
    assert f"volume-{vid}" in images(ceph)
    instance = str(uuid.uuid4())
    hosts, ports = monitors(ceph)
    assert hosts and len(hosts) == len(ports)
    assert str(ceph.port) in ports

    assert nova.get_volume_api(vid)["status"] == "available"
    created = nova.attachment_create(vid, instance)
    assert created.status_code == 200, created.text
    aid = created.json()["attachment"]["id"]
    assert created.json()["attachment"]["connection_info"] == {}
    assert api.states(vid) == ("reserved", "detached")
    reserved = nova.get_volume_compute(vid)
    assert (reserved["status"], reserved["shared_targets"]) == ("reserved", False)
    assert reserved["service_uuid"] is not None

    connector = os_brick_connector("compute-rbd-1")
    updated = nova.attachment_update(aid, connector, "/dev/vdb")
    assert updated.status_code == 200, updated.text
    flat = updated.json()["attachment"]["connection_info"]
    assert flat == expected_rbd_connection(ceph, vid, aid)
    translated = base.nova_translate(updated.json()["attachment"])["connection_info"]
    assert translated["driver_volume_type"] == "rbd"
    data = translated["data"]
    pool, image = data["name"].split("/", 1)
    assert (pool, image) == ("volumes", f"volume-{vid}")
    assert image in images(ceph)
    assert open_as_os_brick(ceph, data, tmp_path) == b"written by the attached host"
    assert api.states(vid) == ("attaching", "attaching")
    [row] = api.rows(vid)
    assert json.loads(row["connector"]) == connector | {"mountpoint": "/dev/vdb"}
    assert (row["attach_status"], row["attached_host"], row["mountpoint"]) == (
        "attaching",
        "compute-rbd-1",
        "/dev/vdb",
    )
    # The attachment keeps what was answered (GET, as Nova's refresh_connection_info reads it).
    shown = api.ok("GET", f"/attachments/{aid}", 200, version=NOVA_ATTACH)["attachment"]
    assert shown["connection_info"] == flat

    completed = nova.attachment_complete(aid)
    assert completed.status_code == 204, completed.text
    assert api.states(vid) == ("in-use", "attached")
    in_use = nova.get_volume_compute(vid)
    assert [(a["attachment_id"], a["server_id"], a["device"]) for a in in_use["attachments"]] == [
        (aid, instance, "/dev/vdb")
    ]

    assert nova.begin_detaching(vid).status_code == 202
    assert api.states(vid) == ("detaching", "attached")
    deleted = nova.attachment_delete(aid)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"attachments": []}
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    # The image is the volume's still, and goes with it.
    assert image in images(ceph)
    assert api.call("DELETE", f"/volumes/{vid}").status_code == 202
    assert wait_for_404(api.client, f"{api.base}/volumes/{vid}", api.hdrs()).status_code == 404
    assert image not in images(ceph)


def test_legacy_initialize_connection_on_rbd(api: Api, ceph: Ceph) -> None:
    vid = api.create_volume()
    connector = {"host": "tf-host-rbd", "ip": "192.0.2.30", "multipath": False}
    answered = api.action(vid, {"os-initialize_connection": {"connector": connector}})
    assert answered.status_code == 200, answered.text
    hosts, ports = monitors(ceph)
    assert answered.json() == {
        "connection_info": {
            "driver_volume_type": "rbd",
            "data": {
                "name": f"{ceph.pool}/volume-{vid}",
                "hosts": hosts,
                "ports": ports,
                "cluster_name": "ceph",
                "auth_enabled": True,
                "auth_username": ceph.client,
                "secret_type": "ceph",
                "secret_uuid": None,
                "volume_id": vid,
                "discard": True,
                "qos_specs": None,
                "access_mode": "rw",
                "encrypted": False,
                "cacheable": False,
                "enforce_multipath": False,
            },
            "enforce_multipath": False,
        }
    }
    assert api.rows(vid) == []
    attach = {"os-attach": {"mountpoint": "/dev/sdb", "host_name": "tf-host-rbd"}}
    assert api.action(vid, attach, admin=True).status_code == 202
    [entry] = api.wait(vid, "in-use")["attachments"]
    assert entry["host_name"] == "tf-host-rbd"
    terminate = {"os-terminate_connection": {"connector": connector}}
    assert api.action(vid, terminate, admin=True).status_code == 202
    detach = {"os-detach": {"attachment_id": entry["attachment_id"]}}
    assert api.action(vid, detach, admin=True).status_code == 202
    assert api.states(vid) == ("available", "detached")


# --- multiattach (RBD reports it) --------------------------------------------------------------


def test_multiattach_volume_on_rbd(api: Api) -> None:
    vid = api.create_volume(api.multiattach_type())
    shown = api.volume(vid)
    assert shown["multiattach"] is True


def test_roll_detaching_and_unreserve_on_rbd(api: Api) -> None:
    base.test_roll_detaching_and_unreserve_keep_an_attached_volume_in_use(api)


def test_detach_without_attachment_id_of_several_on_rbd(api: Api) -> None:
    base.test_detach_without_attachment_id_of_a_volume_with_several(api)


def test_reset_status_detached_on_rbd(api: Api) -> None:
    base.test_reset_status_detached_removes_the_attachments(api)


def test_concurrent_cycles_on_an_rbd_multiattach_volume(api: Api) -> None:
    base.test_concurrent_attach_detach_cycles_on_a_multiattach_volume(api)


# --- the closing note's script -----------------------------------------------------------------


def test_show_nova_attach_script_replays_nova_on_rbd(api: Api, ceph: Ceph) -> None:
    project = uuid.uuid4().hex
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "show_nova_attach.py"),
            api.cluster.rest_url,
            project,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    (api.cluster.data_dir.parent / "show_nova_attach.md").write_text(out)
    for expected in (
        f"`POST /v3/{project}/attachments`",
        "OpenStack-API-Version: volume 3.44",
        '"connector": null',
        '"driver_volume_type": "rbd"',
        f'"name": "{ceph.pool}/volume-',
        "204 No Content",
        '"attachments": []',
    ):
        assert expected in out, expected
    assert out.count("### ") == 13
    leftover = Api(api.client, api.cluster, project)
    assert leftover.ok("GET", "/attachments", 200, version="3.44") == {"attachments": []}
