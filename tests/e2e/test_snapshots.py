"""Snapshots end to end, on the file driver and on RBD (the ``ceph`` fixture): REST create,
show, lists, update, metadata, actions and delete with Cinder's shapes and messages; the
snapshot image checked on the storage itself (the file beside the volume, ``rbd snap ls``);
a volume with snapshots refused a delete but with ``cascade``; the ``snapshots`` and
``gigabytes`` quotas exact under 16 concurrent creates."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.ceph import Ceph
from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status
from tests.e2e.test_rbd_backend import make_rbd_cluster

ADMIN_PROJECT = "adm1n000000000000000000000000001"
SNAPSHOT_KEYS = {
    "id", "created_at", "updated_at", "name", "description", "volume_id", "status", "size",
    "metadata",
}  # fmt: skip
EXTENDED = {
    "os-extended-snapshot-attributes:project_id",
    "os-extended-snapshot-attributes:progress",
}
NOT_DELETABLE = (
    "Invalid volume: Volume status must be available or error or error_restoring or "
    "error_extending or error_managing and must not be migrating, attached, belong to a group, "
    "have snapshots, awaiting a transfer, or be disassociated from snapshots after volume "
    "transfer."
)


@dataclass
class Product:
    cluster: Cluster
    driver: str
    ceph: Ceph | None = None

    def snapshot_images(self, volume_id: str) -> set[str]:
        """The snapshot images of the volume, as the storage itself lists them."""
        if self.ceph is not None:
            image = f"{self.ceph.pool}/volume-{volume_id}"
            snaps = json.loads(self.ceph.rbd("snap", "ls", image, "--format", "json"))
            return {s["name"] for s in snaps}
        root = self.cluster.data_dir / "volumes"
        return {p.name for p in root.rglob("snapshot-*")}

    def volume_image_exists(self, volume_id: str) -> bool:
        if self.ceph is not None:
            images = json.loads(self.ceph.rbd("ls", self.ceph.pool, "--format", "json"))
            return f"volume-{volume_id}" in images
        return any((self.cluster.data_dir / "volumes").rglob(f"volume-{volume_id}*"))


@pytest.fixture(scope="module", params=["file", "rbd"])
def product(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Product]:
    base = tmp_path_factory.mktemp(f"snapshots-{request.param}")
    if request.param == "rbd":
        ceph: Ceph = request.getfixturevalue("ceph")
        running = Product(make_rbd_cluster(base, ceph), "rbd", ceph)
    else:
        quotas = {"volumes": -1, "gigabytes": -1}
        running = Product(make_cluster(base, quotas=quotas), "file")
    running.cluster.start()
    try:
        yield running
    finally:
        running.cluster.stop()


class Api:
    """REST calls of one project's user, and of the admin, through the gateway."""

    def __init__(self, cluster: Cluster, project: str) -> None:
        self.base = cluster.rest_url
        self.project = project
        self.client = httpx.Client(timeout=60)

    def call(
        self, method: str, path: str, admin: bool = False, version: str | None = None, **kw: Any
    ) -> httpx.Response:
        project = ADMIN_PROJECT if admin else self.project
        hdrs = headers(project, user="admin" if admin else "u1", version=version)
        return self.client.request(method, f"{self.base}/v3/{project}{path}", headers=hdrs, **kw)

    def volume(self, size: int = 1) -> str:
        response = self.call("POST", "/volumes", json={"volume": {"size": size}})
        assert response.status_code == 202, response.text
        volume_id: str = response.json()["volume"]["id"]
        url = f"{self.base}/v3/{self.project}/volumes/{volume_id}"
        wait_for_status(self.client, url, headers(self.project), "available", timeout=60)
        return volume_id

    def snapshot(self, volume_id: str, **fields: Any) -> httpx.Response:
        body = {"snapshot": {"volume_id": volume_id, **fields}}
        return self.call("POST", "/snapshots", json=body)

    def wait(self, snapshot_id: str, status: str) -> dict[str, Any]:
        url = f"{self.base}/v3/{self.project}/snapshots/{snapshot_id}"
        return wait_for_status(
            self.client, url, headers(self.project), status, timeout=60, resource="snapshot"
        )

    def wait_gone(self, path: str) -> None:
        url = f"{self.base}/v3/{self.project}{path}"
        assert wait_for_404(self.client, url, headers(self.project), timeout=60).status_code == 404

    def usage(self, resource: str) -> dict[str, int]:
        response = self.call("GET", f"/os-quota-sets/{self.project}?usage=True")
        assert response.status_code == 200, response.text
        shown: dict[str, int] = response.json()["quota_set"][resource]
        return shown

    def set_quota(self, **limits: int) -> None:
        body = {"quota_set": limits}
        response = self.call("PUT", f"/os-quota-sets/{self.project}", admin=True, json=body)
        assert response.status_code == 200, response.text


@pytest.fixture()
def api(product: Product) -> Iterator[Api]:
    client = Api(product.cluster, uuid.uuid4().hex)
    yield client
    client.client.close()


def _created(api: Api, volume_id: str, **fields: Any) -> dict[str, Any]:
    response = api.snapshot(volume_id, **fields)
    assert response.status_code == 202, response.text
    snapshot: dict[str, Any] = response.json()["snapshot"]
    return snapshot


def test_create_show_list_update_delete(product: Product, api: Api) -> None:
    volume_id = api.volume(size=2)
    created = _created(api, volume_id, name=" snap-1 ", description="first", metadata={"k": "v"})
    assert set(created) == SNAPSHOT_KEYS
    assert created["status"] == "creating"
    assert (created["name"], created["description"]) == ("snap-1", "first")
    assert (created["size"], created["volume_id"], created["metadata"]) == (
        2,
        volume_id,
        {"k": "v"},
    )
    snapshot_id = created["id"]
    shown = api.wait(snapshot_id, "available")
    assert set(shown) == SNAPSHOT_KEYS | EXTENDED
    assert shown["os-extended-snapshot-attributes:progress"] == "100%"
    assert shown["os-extended-snapshot-attributes:project_id"] == api.project
    assert f"snapshot-{snapshot_id}" in product.snapshot_images(volume_id)
    # Microversion-gated fields.
    later = api.call("GET", f"/snapshots/{snapshot_id}", version="3.65").json()["snapshot"]
    assert later["group_snapshot_id"] is None
    assert later["user_id"] == "u1"
    assert later["consumes_quota"] is True

    summary = api.call("GET", "/snapshots").json()["snapshots"]
    assert [s["id"] for s in summary] == [snapshot_id]
    assert set(summary[0]) == SNAPSHOT_KEYS
    detail = api.call("GET", "/snapshots/detail").json()["snapshots"]
    assert set(detail[0]) == SNAPSHOT_KEYS | EXTENDED
    for query, found in (
        ("name=snap-1", [snapshot_id]),
        ("name=other", []),
        ("status=available", [snapshot_id]),
        (f"volume_id={volume_id}", [snapshot_id]),
        (f"volume_id={uuid.uuid4()}", []),
    ):
        listed = api.call("GET", f"/snapshots?{query}").json()["snapshots"]
        assert [s["id"] for s in listed] == found, query
    assert api.usage("snapshots")["in_use"] == 1
    assert api.usage("gigabytes")["in_use"] == 4  # the volume's 2 and the snapshot's 2

    body = {"snapshot": {"display_name": "renamed", "description": None}}
    updated = api.call("PUT", f"/snapshots/{snapshot_id}", json=body)
    assert updated.status_code == 200, updated.text
    assert set(updated.json()["snapshot"]) == SNAPSHOT_KEYS
    assert updated.json()["snapshot"]["name"] == "renamed"
    assert updated.json()["snapshot"]["description"] is None
    empty = api.call("PUT", f"/snapshots/{snapshot_id}", json={"snapshot": {}})
    assert empty.status_code == 400
    assert empty.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute snapshot. Value: {}. {} is not valid under any of "
        "the given schemas"
    )

    deleted = api.call("DELETE", f"/snapshots/{snapshot_id}")
    assert deleted.status_code == 202, deleted.text
    api.wait_gone(f"/snapshots/{snapshot_id}")
    assert f"snapshot-{snapshot_id}" not in product.snapshot_images(volume_id)
    usage = api.usage("snapshots")
    assert (usage["in_use"], usage["reserved"]) == (0, 0)
    assert api.usage("gigabytes")["in_use"] == 2
    assert api.call("DELETE", f"/snapshots/{snapshot_id}").status_code == 404


def test_create_refusals(product: Product, api: Api) -> None:
    volume_id = api.volume()
    missing = api.call("POST", "/snapshots", json={"snapshot": {"name": "x"}})
    assert missing.status_code == 400
    assert missing.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute snapshot. Value: {'name': 'x'}. 'volume_id' is a "
        "required property"
    )
    null = api.snapshot(None)  # type: ignore[arg-type]
    assert null.status_code == 404
    assert null.json()["itemNotFound"]["message"] == "Volume None could not be found."
    nobody = str(uuid.uuid4())
    assert api.snapshot(nobody).json()["itemNotFound"]["message"] == (
        f"Volume {nobody} could not be found."
    )
    extra = api.snapshot(volume_id, colour="red")
    assert extra.status_code == 400
    assert "Additional properties are not allowed ('colour' was unexpected)" in extra.text
    bad_force = api.snapshot(volume_id, force="maybe")
    assert bad_force.status_code == 400
    in_use_flag = api.call(
        "POST",
        "/snapshots",
        version="3.66",
        json={"snapshot": {"volume_id": volume_id, "force": False}},
    )
    assert in_use_flag.status_code == 400
    assert in_use_flag.json()["badRequest"]["message"].startswith(
        "Since microversion 3.66 the 'force' flag is invalid for this request."
    )
    # Nothing was left behind by any of them.
    assert api.call("GET", "/snapshots").json()["snapshots"] == []
    assert api.usage("snapshots")["in_use"] == 0
    assert api.usage("snapshots")["reserved"] == 0


def test_metadata(product: Product, api: Api) -> None:
    volume_id = api.volume()
    snapshot_id = _created(api, volume_id, metadata={"a": "1"})["id"]
    api.wait(snapshot_id, "available")
    path = f"/snapshots/{snapshot_id}/metadata"
    assert api.call("GET", path).json() == {"metadata": {"a": "1"}}
    merged = api.call("POST", path, json={"metadata": {"b": "2"}})
    assert merged.json() == {"metadata": {"a": "1", "b": "2"}}
    replaced = api.call("PUT", path, json={"metadata": {"c": "3"}})
    assert replaced.json() == {"metadata": {"c": "3"}}
    assert api.call("GET", f"{path}/c").json() == {"meta": {"c": "3"}}
    item = api.call("PUT", f"{path}/d", json={"meta": {"d": "4"}})
    assert item.json() == {"meta": {"d": "4"}}
    mismatch = api.call("PUT", f"{path}/e", json={"meta": {"d": "4"}})
    assert mismatch.status_code == 400
    assert api.call("DELETE", f"{path}/c").status_code == 200
    gone = api.call("GET", f"{path}/c")
    assert gone.status_code == 404
    assert gone.json()["itemNotFound"]["message"] == (
        f"Snapshot {snapshot_id} has no metadata with key c."
    )
    shown = api.call("GET", f"/snapshots/{snapshot_id}").json()["snapshot"]
    assert shown["metadata"] == {"d": "4"}


def test_actions(product: Product, api: Api) -> None:
    volume_id = api.volume()
    snapshot_id = _created(api, volume_id)["id"]
    api.wait(snapshot_id, "available")
    action = f"/snapshots/{snapshot_id}/action"
    refused = api.call("POST", action, json={"os-reset_status": {"status": "error"}})
    assert refused.status_code == 403
    bogus = api.call("POST", action, admin=True, json={"os-reset_status": {"status": "bogus"}})
    assert bogus.status_code == 400
    assert bogus.json()["badRequest"]["message"].startswith(
        "Snapshot status: bogus is invalid, valid statuses are: ('error', 'available',"
    )
    # Reset to `creating`: no manager takes it up again; its creator reports the outcome.
    reset = api.call("POST", action, admin=True, json={"os-reset_status": {"status": "creating"}})
    assert reset.status_code == 202, reset.text
    update = {"os-update_snapshot_status": {"status": "error", "progress": "80%"}}
    assert api.call("POST", action, json=update).status_code == 202
    shown = api.wait(snapshot_id, "error")
    assert shown["os-extended-snapshot-attributes:progress"] == "80%"
    again = api.call("POST", action, json={"os-update_snapshot_status": {"status": "available"}})
    assert again.status_code == 400
    assert again.json()["badRequest"]["message"] == (
        "Snapshot status error not allowed for update_snapshot_status"
    )
    # A plain delete refuses what a force delete takes.
    api.call("POST", action, admin=True, json={"os-reset_status": {"status": "error_deleting"}})
    plain = api.call("DELETE", f"/snapshots/{snapshot_id}")
    assert plain.status_code == 400
    assert plain.json()["badRequest"]["message"] == (
        "Invalid snapshot: Snapshot status must be available or error and must not be part "
        "of a group."
    )
    forced = api.call("POST", action, admin=True, json={"os-force_delete": {}})
    assert forced.status_code == 202, forced.text
    api.wait_gone(f"/snapshots/{snapshot_id}")
    assert f"snapshot-{snapshot_id}" not in product.snapshot_images(volume_id)
    assert api.usage("snapshots")["in_use"] == 0


def test_volume_with_snapshots_needs_cascade(product: Product, api: Api) -> None:
    volume_id = api.volume()
    first = _created(api, volume_id)["id"]
    second = _created(api, volume_id)["id"]
    for snapshot_id in (first, second):
        api.wait(snapshot_id, "available")
    refused = api.call("DELETE", f"/volumes/{volume_id}")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == NOT_DELETABLE
    assert product.snapshot_images(volume_id) >= {f"snapshot-{first}", f"snapshot-{second}"}
    cascaded = api.call("DELETE", f"/volumes/{volume_id}?cascade=true")
    assert cascaded.status_code == 202, cascaded.text
    api.wait_gone(f"/volumes/{volume_id}")
    for snapshot_id in (first, second):
        assert api.call("GET", f"/snapshots/{snapshot_id}").status_code == 404
    assert not product.volume_image_exists(volume_id)
    assert api.usage("snapshots")["in_use"] == 0
    assert api.usage("volumes")["in_use"] == 0
    assert api.usage("gigabytes")["in_use"] == 0


def test_concurrent_creates_against_the_quota(product: Product, api: Api) -> None:
    api.set_quota(snapshots=10)
    volume_id = api.volume()

    def create(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            return client.post(
                f"{api.base}/v3/{api.project}/snapshots",
                headers=headers(api.project),
                json={"snapshot": {"volume_id": volume_id}},
            )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(create, range(16)))
    accepted = [r.json()["snapshot"]["id"] for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert len(accepted) == 10
    assert {r.status_code for r in refused} == {413}
    assert {r.json()["overLimit"]["message"] for r in refused} == {
        "SnapshotLimitExceeded: Maximum number of snapshots allowed (10) exceeded"
    }
    for snapshot_id in accepted:
        api.wait(snapshot_id, "available")
    assert api.usage("snapshots")["in_use"] == 10
    assert len(product.snapshot_images(volume_id) & {f"snapshot-{i}" for i in accepted}) == 10
    for snapshot_id in accepted:
        assert api.call("DELETE", f"/snapshots/{snapshot_id}").status_code == 202
    for snapshot_id in accepted:
        api.wait_gone(f"/snapshots/{snapshot_id}")
    usage = api.usage("snapshots")
    assert (usage["in_use"], usage["reserved"]) == (0, 0)
    assert api.usage("gigabytes")["in_use"] == 1


def test_gigabytes_quota(product: Product, api: Api) -> None:
    api.set_quota(gigabytes=3)
    volume_id = api.volume(size=2)
    refused = api.snapshot(volume_id)
    assert refused.status_code == 413
    assert refused.json()["overLimit"]["message"] == (
        "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
        "gigabytes quota. Requested 2G, quota is 3G and 2G has been consumed."
    )
    assert api.call("GET", "/snapshots").json()["snapshots"] == []
    usage = api.usage("gigabytes")
    assert (usage["in_use"], usage["reserved"]) == (2, 0)


def test_list_pages_sorts_and_counts(product: Product, api: Api) -> None:
    volume_id = api.volume()
    ids = [_created(api, volume_id, name=name)["id"] for name in ("b", "c", "a")]
    for snapshot_id in ids:
        api.wait(snapshot_id, "available")
    first = api.call("GET", "/snapshots/detail?limit=2").json()
    newest_first = list(reversed(ids))
    assert [s["id"] for s in first["snapshots"]] == newest_first[:2]
    (link,) = first["snapshots_links"]
    assert link["rel"] == "next"
    assert f"/v3/{api.project}/snapshots/detail?" in link["href"]
    assert f"marker={newest_first[1]}" in link["href"]
    rest = api.client.get(link["href"], headers=headers(api.project)).json()
    assert [s["id"] for s in rest["snapshots"]] == newest_first[2:]
    assert "snapshots_links" not in rest
    by_name = api.call("GET", "/snapshots?sort=name:asc").json()["snapshots"]
    assert [s["name"] for s in by_name] == ["a", "b", "c"]
    by_key = api.call("GET", "/snapshots?sort_key=display_name&sort_dir=desc").json()
    assert [s["name"] for s in by_key["snapshots"]] == ["c", "b", "a"]
    assert len(api.call("GET", "/snapshots?offset=2").json()["snapshots"]) == 1
    counted = api.call("GET", "/snapshots?limit=1&with_count=true", version="3.45").json()
    assert counted["count"] == 3
    assert len(counted["snapshots"]) == 1
    bad_sort = api.call("GET", "/snapshots?sort_key=colour")
    assert bad_sort.status_code == 400
    assert bad_sort.json()["badRequest"]["message"] == "Invalid input received: Invalid sort key"
    marker = api.call("GET", f"/snapshots?marker={uuid.uuid4()}")
    assert marker.status_code == 404
    other = Api(product.cluster, uuid.uuid4().hex)
    assert other.call("GET", "/snapshots").json()["snapshots"] == []
    assert other.call("GET", f"/snapshots/{ids[0]}").status_code == 404
    everyone = api.call("GET", "/snapshots?all_tenants=1", admin=True).json()["snapshots"]
    assert set(ids) <= {s["id"] for s in everyone}
    for snapshot_id in ids:
        api.call("DELETE", f"/snapshots/{snapshot_id}")
