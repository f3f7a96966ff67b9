"""The volume API against Cinder's golden responses: show, list, detail, update, metadata,
pagination, filters, microversion-gated fields, project isolation and delete rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.golden import assert_cinder_headers, assert_shape, golden
from tests.e2e.helpers import headers, wait_for_404, wait_for_status


class Api:
    def __init__(self, cluster: Cluster, project: str, user: str = "admin") -> None:
        self.base = f"{cluster.rest_url}/v3/{project}"
        self.project = project
        self.user = user
        self.client = httpx.Client()

    def hdrs(self, version: str | None = None) -> dict[str, str]:
        return headers(self.project, self.user, version)

    def request(
        self, method: str, path: str, version: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.request(method, self.base + path, headers=self.hdrs(version), **kwargs)

    def create(self, **volume: Any) -> dict[str, Any]:
        response = self.request("POST", "/volumes", json={"volume": {"size": 1, **volume}})
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()["volume"]
        wait_for_status(
            self.client, f"{self.base}/volumes/{created['id']}", self.hdrs(), "available"
        )
        return created

    def delete_all(self) -> None:
        for volume in self.request("GET", "/volumes").json()["volumes"]:
            url = f"{self.base}/volumes/{volume['id']}"
            self.client.delete(url, headers=self.hdrs())
            wait_for_404(self.client, url, self.hdrs())


@pytest.fixture()
def api(cluster: Cluster, project: str) -> Iterator[Api]:
    client = Api(cluster, project)
    yield client
    client.delete_all()
    client.client.close()


def test_create_and_show_match_cinder(api: Api) -> None:
    body = golden("volume-create")["request"]["body"]
    created = api.request("POST", "/volumes", json=body)
    assert created.status_code == 202
    assert_cinder_headers(created.headers, "volume-create")
    assert_shape(created.json(), "volume-create")
    volume_id = created.json()["volume"]["id"]
    wait_for_status(api.client, f"{api.base}/volumes/{volume_id}", api.hdrs(), "available")

    shown = api.request("GET", f"/volumes/{volume_id}")
    assert shown.status_code == 200
    assert_cinder_headers(shown.headers, "volume-show")
    assert_shape(shown.json(), "volume-show")
    assert shown.json()["volume"]["metadata"] == {"tier": "gold"}

    latest = api.request("GET", f"/volumes/{volume_id}", version="3.71")
    assert latest.headers["openstack-api-version"] == "volume 3.71"
    assert_shape(latest.json(), "volume-show-mv3.71")
    created71 = api.request(
        "POST", "/volumes", version="3.71", json={"volume": {"size": 1, "name": "golden2"}}
    )
    assert_shape(created71.json(), "volume-create-mv3.71")
    assert created71.json()["volume"]["shared_targets"] is True


def test_non_admin_sees_no_admin_fields(cluster: Cluster, project: str) -> None:
    user = Api(cluster, project, user="demo")
    try:
        volume = user.create()
        shown = user.request("GET", f"/volumes/{volume['id']}", version="3.71").json()["volume"]
        for admin_only in (
            "os-vol-host-attr:host",
            "os-vol-mig-status-attr:migstat",
            "os-vol-mig-status-attr:name_id",
            "migration_status",
            "provider_id",
            "cluster_name",
        ):
            assert admin_only not in shown
        assert shown["os-vol-tenant-attr:tenant_id"] == project
    finally:
        user.delete_all()


def test_lists_match_cinder(api: Api) -> None:
    # The same data as the golden capture had.
    first = api.create(name="golden", description="golden volume", metadata={"tier": "gold"})
    second = api.create(name="golden2")
    summary = api.request("GET", "/volumes")
    assert_shape(summary.json(), "volumes-list")
    assert [v["id"] for v in summary.json()["volumes"]] == [second["id"], first["id"]]
    detail = api.request("GET", "/volumes/detail")
    assert_shape(detail.json(), "volumes-detail")
    by_name = api.request("GET", "/volumes/detail?name=golden")
    assert_shape(by_name.json(), "volumes-detail-filter-name")
    assert [v["id"] for v in by_name.json()["volumes"]] == [first["id"]]

    page = api.request("GET", "/volumes/detail?limit=1&with_count=true", version="3.71")
    assert_shape(page.json(), "volumes-detail-limit1-mv3.71")
    body = page.json()
    assert body["count"] == 2
    assert body["volumes_links"] == [
        {
            "href": f"{api.base}/volumes/detail?limit=1&with_count=true&marker={second['id']}",
            "rel": "next",
        }
    ]
    rest = api.client.get(body["volumes_links"][0]["href"], headers=api.hdrs("3.71")).json()
    assert [v["id"] for v in rest["volumes"]] == [first["id"]]


def test_sort_filters_and_errors(api: Api) -> None:
    a = api.create(name="a", metadata={"tier": "gold"})
    b = api.create(name="b")
    ids = lambda r: [v["id"] for v in r.json()["volumes"]]  # noqa: E731
    assert ids(api.request("GET", "/volumes?sort=name:asc")) == [a["id"], b["id"]]
    assert ids(api.request("GET", "/volumes?sort_key=name&sort_dir=desc")) == [b["id"], a["id"]]
    assert ids(api.request("GET", '/volumes?metadata={"tier":"gold"}')) == [a["id"]]
    assert ids(api.request("GET", "/volumes?status=available&name=b")) == [b["id"]]
    assert ids(api.request("GET", "/volumes?metadata=notadict")) == []
    for query, message in [
        ("sort_key=bogus", "Invalid input received: Invalid sort key"),
        ("limit=x", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
        (
            "sort=name&sort_key=id",
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
        ),
        (
            "sort_dir=sideways",
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
        ),
    ]:
        response = api.request("GET", f"/volumes?{query}")
        assert response.status_code == 400, query
        assert response.json() == {"badRequest": {"code": 400, "message": message}}
    missing = api.request("GET", "/volumes?marker=00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


def test_update_matches_cinder(api: Api) -> None:
    volume = api.create(name="golden", description="golden volume", metadata={"tier": "gold"})
    updated = api.request(
        "PUT", f"/volumes/{volume['id']}", json={"volume": {"name": "golden-renamed"}}
    )
    assert updated.status_code == 200
    assert_shape(updated.json(), "volume-update")
    assert updated.json()["volume"]["name"] == "golden-renamed"
    assert updated.json()["volume"]["description"] == "golden volume"
    assert updated.json()["volume"]["updated_at"] is not None
    replaced = api.request(
        "PUT", f"/volumes/{volume['id']}", json={"volume": {"metadata": {"k": "v"}}}
    )
    assert replaced.json()["volume"]["metadata"] == {"k": "v"}
    for body, message in [
        (
            {"volume": {"size": 2}},
            "Invalid input for field/attribute volume. Value: {'size': 2}. Additional properties are not allowed ('size' was unexpected)",
        ),
        (
            {"volume": {"metadata": None}},
            "Invalid input for field/attribute metadata. Value: None. None is not of type 'object'",
        ),
        ({}, "'volume' is a required property"),
        (
            {"volume": {"name": "x" * 256}},
            "Invalid input received: name has 256 characters, more than 255.",
        ),
    ]:
        response = api.request("PUT", f"/volumes/{volume['id']}", json=body)
        assert response.status_code == 400, body
        assert response.json() == {"badRequest": {"code": 400, "message": message}}
    strict = api.request("PUT", f"/volumes/{volume['id']}", version="3.53", json={"volume": {}})
    assert strict.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute volume. Value: {}. {} is not valid under any of the given schemas"
    )


def test_metadata_subresource_matches_cinder(api: Api) -> None:
    volume = api.create(metadata={"tier": "gold"})
    path = f"/volumes/{volume['id']}/metadata"
    # Cinder's own sequence, request by request; bodies are deterministic here.
    for name in (
        "volume-metadata-show",
        "volume-metadata-create",
        "volume-metadata-replace",
        "volume-metadata-key-show",
        "volume-metadata-key-update",
        "volume-metadata-key-delete",
    ):
        recorded = golden(name)
        sub = recorded["request"]["path"].split("/metadata", 1)[1]
        response = api.request(
            recorded["request"]["method"], path + sub, json=recorded["request"]["body"]
        )
        assert response.status_code == recorded["status"], name
        assert_cinder_headers(response.headers, name)
        if recorded["body"] is None:
            assert response.content == b"", name
        else:
            assert response.json() == recorded["body"], name
    assert api.request("GET", f"/volumes/{volume['id']}").json()["volume"]["metadata"] == {}
    api.request("PUT", path, json={"metadata": {"only": "this"}})

    missing = api.request("GET", f"{path}/nope")
    assert missing.status_code == 404
    assert (
        missing.json()["itemNotFound"]["message"]
        == f"Volume {volume['id']} has no metadata with key nope."
    )
    for method, sub, body, message in [
        ("PUT", "/only", {"meta": {"other": "x"}}, "Request body and URI mismatch"),
        (
            "PUT",
            "/only",
            {"meta": {}},
            "Invalid input for field/attribute meta. Value: {}. {} should be non-empty",
        ),
        (
            "PUT",
            "/only",
            {"meta": {"a": "1", "b": "2"}},
            "Invalid input for field/attribute meta. Value: {'a': '1', 'b': '2'}. {'a': '1', 'b': '2'} has too many properties",
        ),
        ("POST", "", {}, "'metadata' is a required property"),
        (
            "POST",
            "",
            {"metadata": {"k": 1}},
            "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'",
        ),
    ]:
        response = api.request(method, path + sub, json=body)
        assert response.status_code == 400, (method, body)
        assert response.json() == {"badRequest": {"code": 400, "message": message}}


def test_projects_are_isolated_and_admins_see_all(cluster: Cluster, project: str) -> None:
    owner = Api(cluster, project, user="demo")
    other = Api(cluster, "e" * 32, user="demo")
    admin = Api(cluster, "a" * 32, user="admin")
    try:
        volume = owner.create(name="mine")
        for method, path, body in [
            ("GET", f"/volumes/{volume['id']}", None),
            ("PUT", f"/volumes/{volume['id']}", {"volume": {"name": "stolen"}}),
            ("GET", f"/volumes/{volume['id']}/metadata", None),
            ("DELETE", f"/volumes/{volume['id']}", None),
        ]:
            response = other.request(method, path, json=body)
            assert response.status_code == 404, (method, path)
        assert other.request("GET", "/volumes/detail?all_tenants=1").json()["volumes"] == []
        everyone = admin.request("GET", "/volumes/detail?all_tenants=1").json()["volumes"]
        assert volume["id"] in [v["id"] for v in everyone]
        assert volume["id"] not in [
            v["id"] for v in admin.request("GET", "/volumes").json()["volumes"]
        ]
        assert owner.request("GET", f"/volumes/{volume['id']}").json()["volume"]["name"] == "mine"
    finally:
        owner.delete_all()


def test_delete_rules(api: Api) -> None:
    volume = api.create()
    bad = api.request("DELETE", f"/volumes/{volume['id']}?cascade=maybe")
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == "Value 'maybe' for 'cascade' is not a boolean."
    ok = api.request("DELETE", f"/volumes/{volume['id']}?cascade=False&force=False")
    assert ok.status_code == 202
    again = api.request("DELETE", f"/volumes/{volume['id']}")
    assert again.status_code in (400, 404)
    wait_for_404(api.client, f"{api.base}/volumes/{volume['id']}", api.hdrs())


def test_project_less_urls(cluster: Cluster, project: str) -> None:
    client = httpx.Client()
    hdrs = headers(project, "demo")
    created = client.post(
        f"{cluster.rest_url}/v3/volumes", headers=hdrs, json={"volume": {"size": 1}}
    )
    assert created.status_code == 202
    volume = created.json()["volume"]
    assert volume["links"][0]["href"] == f"{cluster.rest_url}/v3/volumes/{volume['id']}"
    url = f"{cluster.rest_url}/v3/volumes/{volume['id']}"
    wait_for_status(client, url, hdrs, "available")
    listed = client.get(f"{cluster.rest_url}/v3/{project}/volumes", headers=hdrs).json()
    assert [v["id"] for v in listed["volumes"]] == [volume["id"]]
    assert client.delete(url, headers=hdrs).status_code == 202
    wait_for_404(client, url, hdrs)


def test_metadata_etag_and_if_match(api: Api) -> None:
    volume = api.create(metadata={"a": "1", "b": "2"})
    path = f"/volumes/{volume['id']}/metadata"
    assert "etag" not in api.request("GET", path).headers
    shown = api.request("GET", path, version="3.15")
    etag = shown.headers["etag"]
    stale = api.client.put(
        api.base + path,
        headers={**api.hdrs("3.15"), "If-Match": "0" * 32},
        json={"metadata": {"a": "1"}},
    )
    assert stale.status_code == 412 and stale.content == b""
    fresh = api.client.put(
        api.base + path,
        headers={**api.hdrs("3.15"), "If-Match": etag},
        json={"metadata": {"a": "1"}},
    )
    assert fresh.status_code == 200
    assert fresh.json() == {"metadata": {"a": "1"}}
    assert api.request("GET", path, version="3.15").headers["etag"] != etag
