"""Volumes as Tempest's volume tests check them (``tempest.api.volume``: test_volumes_get,
test_volumes_list, test_volumes_negative, test_volume_metadata, admin/test_volumes_list), through
the real product: statuses, shapes (the keys Tempest's response schemas require and allow),
the admin's ``project_id`` filter, the empty id, the summary (3.12/3.36), private types shared
with a project, and the list filters of later microversions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status

#: The keys of a volume Tempest's 3.0 schema requires (create, show, detail list, update).
REQUIRED = {
    "attachments", "links", "encrypted", "updated_at", "replication_status", "id", "size",
    "user_id", "availability_zone", "metadata", "status", "description", "multiattach",
    "consistencygroup_id", "name", "bootable", "created_at", "volume_type", "snapshot_id",
    "source_volid",
}  # fmt: skip
#: What else it allows in a create or update answer ...
CREATE_OPTIONAL = {"migration_status", "group_id", "provider_id", "service_uuid", "shared_targets"}
#: ... and in a show or detail list (the view extensions).
SHOW_OPTIONAL = CREATE_OPTIONAL | {
    "os-vol-host-attr:host", "os-vol-tenant-attr:tenant_id", "os-vol-mig-status-attr:migstat",
    "os-vol-mig-status-attr:name_id", "volume_image_metadata",
}  # fmt: skip
NOT_FOUND = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}


def _assert_volume_shape(volume: dict[str, Any], optional: set[str]) -> None:
    keys = set(volume)
    assert keys >= REQUIRED, REQUIRED - keys
    assert keys <= REQUIRED | optional, keys - REQUIRED - optional
    assert isinstance(volume["size"], int) and isinstance(volume["bootable"], str)
    assert isinstance(volume["encrypted"], bool) and isinstance(volume["multiattach"], bool)
    host = volume.get("os-vol-host-attr:host")
    assert host is None or ("@" in host and "#" in host)


class Rest:
    def __init__(self, cluster: Cluster, project: str, user: str = "u1") -> None:
        self.root = cluster.rest_url
        self.base = f"{cluster.rest_url}/v3/{project}"
        self.project = project
        self.user = user
        self.client = httpx.Client()
        self.created: list[str] = []

    def request(
        self, method: str, path: str, version: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        hdrs = headers(self.project, self.user, version)
        return self.client.request(method, self.base + path, headers=hdrs, **kwargs)

    def create(self, version: str | None = None, **volume: Any) -> dict[str, Any]:
        body = {"volume": {"size": 1, **volume}}
        response = self.request("POST", "/volumes", version, json=body)
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()["volume"]
        self.created.append(created["id"])
        url = f"{self.base}/volumes/{created['id']}"
        wait_for_status(self.client, url, headers(self.project, self.user), "available")
        return created

    def close(self) -> None:
        hdrs = headers(self.project, self.user)
        for volume_id in self.created:
            url = f"{self.base}/volumes/{volume_id}"
            self.client.delete(url, headers=hdrs)
            wait_for_404(self.client, url, hdrs)
        self.client.close()


@pytest.fixture()
def rest(cluster: Cluster, project: str) -> Iterator[Rest]:
    client = Rest(cluster, project)
    yield client
    client.close()


@pytest.fixture()
def admin(cluster: Cluster) -> Iterator[Rest]:
    client = Rest(cluster, uuid.uuid4().hex, user="admin")
    yield client
    client.close()


def test_crud_shapes_follow_tempest_schemas(rest: Rest) -> None:
    """VolumesGetTest: create with metadata, show, update (same name, then new name and
    description), a second volume in the same zone, delete."""
    created = rest.create(name="v1", metadata={"Type": "Test"})
    _assert_volume_shape(created, CREATE_OPTIONAL)
    shown = rest.request("GET", f"/volumes/{created['id']}")
    assert shown.status_code == 200
    volume = shown.json()["volume"]
    _assert_volume_shape(volume, SHOW_OPTIONAL)
    assert volume["metadata"] == {"Type": "Test"} and volume["bootable"] == "false"
    for body in ({"name": "v1"}, {"name": "v2", "description": "new description"}):
        updated = rest.request("PUT", f"/volumes/{created['id']}", json={"volume": body})
        assert updated.status_code == 200
        _assert_volume_shape(updated.json()["volume"], CREATE_OPTIONAL)
    assert updated.json()["volume"]["description"] == "new description"
    second = rest.create(
        description="@#$%^* description", availability_zone=volume["availability_zone"]
    )
    renamed = rest.request("PUT", f"/volumes/{second['id']}", json={"volume": {"name": "v2"}})
    assert renamed.status_code == 200
    detail = rest.request("GET", "/volumes/detail").json()
    assert set(detail) == {"volumes"}
    for item in detail["volumes"]:
        _assert_volume_shape(item, SHOW_OPTIONAL)
    summary = rest.request("GET", "/volumes").json()
    assert all(set(v) == {"id", "name", "links"} for v in summary["volumes"])


def test_empty_volume_id_is_not_found(rest: Rest) -> None:
    """test_get_volume_without_passing_volume_id, test_update_volume_with_empty_volume_id,
    test_delete_volume_without_passing_volume_id: 404, never the list."""
    for method, body in (("GET", None), ("PUT", {"volume": {"name": "n"}}), ("DELETE", None)):
        response = rest.request(method, "/volumes/", json=body)
        assert response.status_code == 404, (method, response.text)
        assert response.json() == NOT_FOUND
    assert rest.request("GET", "/volumes").status_code == 200
    assert rest.request("GET", "/volumes/detail").status_code == 200


def test_admin_lists_another_project_with_project_id(
    cluster: Cluster, rest: Rest, admin: Rest
) -> None:
    """VolumesListAdminTestJSON.test_volume_list_param_tenant: the query's project_id is
    the admin's filter (it was bound to the URL's project: 400 Malformed request url)."""
    mine = {rest.create()["id"] for _ in range(2)}
    admin.create()
    query = f"/volumes/detail?all_tenants=1&project_id={rest.project}"
    listed = admin.request("GET", query)
    assert listed.status_code == 200, listed.text
    volumes = listed.json()["volumes"]
    assert {v["id"] for v in volumes} == mine
    assert [v["os-vol-tenant-attr:tenant_id"] for v in volumes] == [rest.project] * 2
    summary = admin.request("GET", f"/volumes?all_tenants=1&project_id={rest.project}")
    assert {v["id"] for v in summary.json()["volumes"]} == mine
    # Without all_tenants an admin lists its own project: no volume is in both.
    assert admin.request("GET", f"/volumes?project_id={rest.project}").json()["volumes"] == []
    # A non-admin's project_id: dropped before 3.33, Cinder's 400 from 3.33 (resource filters).
    other = f"/volumes?project_id={admin.project}"
    assert {v["id"] for v in rest.request("GET", other).json()["volumes"]} == mine
    refused = rest.request("GET", other, "3.33")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == (
        "Invalid filters project_id are found in query options."
    )


def test_volume_summary(cluster: Cluster, rest: Rest, admin: Rest) -> None:
    """VolumesSummaryTest.test_show_volume_summary: 3.12, metadata from 3.36."""
    rest.create(size=1, metadata={"k": "a"})
    rest.create(size=2, metadata={"k": "b", "j": "c"})
    admin.create(size=3, metadata={"k": "a"})
    before = rest.request("GET", "/volumes/summary")
    assert before.status_code == 404 and before.json() == NOT_FOUND
    plain = rest.request("GET", "/volumes/summary", "3.12")
    assert plain.status_code == 200, plain.text
    assert plain.json() == {"volume-summary": {"total_size": 3, "total_count": 2}}
    with_metadata = rest.request("GET", "/volumes/summary", "3.36").json()["volume-summary"]
    assert with_metadata["total_size"] == 3 and with_metadata["total_count"] == 2
    assert {k: sorted(v) for k, v in with_metadata["metadata"].items()} == {
        "j": ["c"],
        "k": ["a", "b"],
    }
    # all_tenants: every project's for an admin, the caller's own for anyone else.
    everyone = admin.request("GET", "/volumes/summary?all_tenants=1", "3.36").json()
    assert everyone["volume-summary"]["total_count"] >= 3
    assert set(everyone["volume-summary"]["metadata"]["k"]) >= {"a", "b"}
    own = admin.request("GET", "/volumes/summary", "3.36").json()["volume-summary"]
    assert own == {"total_size": 3, "total_count": 1, "metadata": {"k": ["a"]}}
    ignored = rest.request("GET", "/volumes/summary?all_tenants=1", "3.12").json()
    assert ignored["volume-summary"]["total_count"] == 2
    empty = Rest(cluster, uuid.uuid4().hex)
    nothing = empty.request("GET", "/volumes/summary", "3.36").json()
    empty.close()
    assert nothing == {"volume-summary": {"total_size": 0, "total_count": 0, "metadata": {}}}


def test_private_type_shared_with_the_project_can_be_used(
    cluster: Cluster, rest: Rest, admin: Rest
) -> None:
    """A private type is usable by the projects it is shared with (not only by admins)."""
    name = f"private-{uuid.uuid4().hex[:8]}"
    body = {"volume_type": {"name": name, "os-volume-type-access:is_public": False}}
    made = admin.request("POST", "/types", json=body)
    assert made.status_code == 200, made.text
    type_id = made.json()["volume_type"]["id"]
    refused = rest.request("POST", "/volumes", json={"volume": {"size": 1, "volume_type": name}})
    assert refused.status_code == 404
    assert refused.json()["itemNotFound"]["message"] == (
        f"Volume type with name {name} could not be found."
    )
    share = {"addProjectAccess": {"project": rest.project}}
    assert admin.request("POST", f"/types/{type_id}/action", json=share).status_code == 202
    by_name = rest.create(volume_type=name)
    by_id = rest.create(volume_type=type_id)
    assert by_name["volume_type"] == by_id["volume_type"] == name
    for volume_id in rest.created:
        assert rest.request("DELETE", f"/volumes/{volume_id}").status_code == 202
        wait_for_404(rest.client, f"{rest.base}/volumes/{volume_id}", headers(rest.project))
    rest.created.clear()
    assert admin.request("DELETE", f"/types/{type_id}").status_code == 202


def test_pagination_links_are_followable(rest: Rest) -> None:
    """test_volume_list_pagination / ..._details_pagination: limit=1 and the next links, whose
    path and query are the request Tempest makes with them; an empty last page has none."""
    ids = {rest.create()["id"] for _ in range(3)}
    for resource in ("/volumes", "/volumes/detail"):
        seen: list[str] = []
        query = "limit=1"
        while True:
            page = rest.request("GET", f"{resource}?{query}").json()
            seen += [v["id"] for v in page["volumes"]]
            links = [link for link in page.get("volumes_links", ()) if link["rel"] == "next"]
            if not links:
                assert page["volumes"] == []
                break
            href = urlsplit(links[0]["href"])
            assert href.path == urlsplit(rest.base + resource).path
            query = href.query
        assert sorted(seen) == sorted(ids) and len(seen) == 3


def test_list_filters_of_tempest_and_later_microversions(rest: Rest) -> None:
    """test_volumes_list's filters (name, status, bootable, availability_zone, metadata,
    sort_key/sort_dir with limit) and the ones Cinder gates: bootable is strict from 3.2,
    group_id from 3.10, created_at/updated_at comparisons and consumes_quota from 3.33 on
    (they are 3.60's and 3.65's; Cinder reads them once it takes general filters)."""
    made = [rest.create(name=f"f{i}", metadata={"Type": "work"}) for i in range(3)]
    ids = {v["id"] for v in made}

    def listed(query: str, version: str | None = None) -> set[str]:
        response = rest.request("GET", f"/volumes/detail?{query}", version)
        assert response.status_code == 200, (query, response.text)
        return {v["id"] for v in response.json()["volumes"]}

    assert listed("name=f1") == {made[1]["id"]}
    assert listed("status=available&bootable=false") == ids
    assert listed("status=null") == set()
    assert listed('metadata={"Type": "work"}') == ids
    assert listed(f"availability_zone={made[0]['availability_zone']}") == ids
    ordered = rest.request("GET", "/volumes/detail?limit=2&sort_key=id&sort_dir=asc").json()
    assert [v["id"] for v in ordered["volumes"]] == sorted(ids)[:2]

    assert listed("bootable=maybe") == set()  # lenient before 3.2: true
    strict = rest.request("GET", "/volumes/detail?bootable=maybe", "3.2")
    assert strict.status_code == 400
    assert strict.json()["badRequest"]["message"] == "Invalid input received: 'bootable = maybe'"

    assert listed("group_id=" + str(uuid.uuid4())) == ids  # ignored before 3.10
    assert listed("group_id=" + str(uuid.uuid4()), "3.10") == set()
    assert listed("migration_status=migrating") == set()

    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert listed(f"created_at=lt:{past}") == ids  # ignored before 3.33
    assert listed(f"created_at=gt:{past}", "3.60") == ids
    assert listed(f"created_at=lt:{past}", "3.60") == set()
    assert listed(f"created_at=lt:{past},gte:{past}", "3.60") == ids
    bad = rest.request("GET", f"/volumes/detail?updated_at=after:{past}", "3.60")
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == "Invalid after operator"

    assert listed("consumes_quota=false") == ids  # ignored before 3.33
    assert listed("consumes_quota=true", "3.65") == ids
    assert listed("consumes_quota=false", "3.65") == set()
