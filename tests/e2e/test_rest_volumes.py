"""Create, show, list and delete over REST through Envoy, against the real processes."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers, volume_files, wait_for_404, wait_for_status

REQUEST_ID = re.compile(r"^req-[0-9a-f-]{36}$")


def test_create_show_list_delete(cluster: Cluster, project: str) -> None:
    hdrs = headers(project)
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    with httpx.Client() as client:
        created = client.post(base, headers=hdrs, json={"volume": {"size": 1, "name": "a"}})
        assert created.status_code == 202, created.text
        assert REQUEST_ID.match(created.headers["x-openstack-request-id"])
        assert created.headers["openstack-api-version"] == "volume 3.0"
        volume = created.json()["volume"]
        assert volume["status"] == "creating"
        assert volume["size"] == 1 and volume["name"] == "a"
        assert volume["description"] is None and volume["updated_at"] is None
        assert volume["links"][0] == {
            "href": f"{cluster.rest_url}/v3/{project}/volumes/{volume['id']}",
            "rel": "self",
        }
        assert "grpc-status" not in created.headers

        url = f"{base}/{volume['id']}"
        shown = wait_for_status(client, url, hdrs, "available")
        assert shown["os-vol-tenant-attr:tenant_id"] == project
        assert "os-vol-host-attr:host" not in shown  # admin only
        assert shown["bootable"] == "false" and shown["volume_type"] == "__DEFAULT__"

        summary = client.get(base, headers=hdrs).json()["volumes"]
        assert summary == [{"id": volume["id"], "name": "a", "links": volume["links"]}]
        detail = client.get(f"{base}/detail", headers=hdrs).json()["volumes"]
        assert [v["id"] for v in detail] == [volume["id"]]
        assert detail[0]["status"] == "available"

        deleted = client.delete(url, headers=hdrs)
        assert deleted.status_code == 202
        assert deleted.content == b""
        gone = wait_for_404(client, url, hdrs)
        assert gone.status_code == 404
        assert gone.json() == {
            "itemNotFound": {"code": 404, "message": f"Volume {volume['id']} could not be found."}
        }
    assert db_rows(cluster, "select * from volumes where project_id = ?", project) == []
    assert db_rows(
        cluster,
        "select in_use, reserved from quota_usages where project_id = ? and resource = 'volumes'",
        project,
    ) == [(0, 0)]


def test_admin_sees_host(cluster: Cluster, project: str) -> None:
    hdrs = headers(project, user="admin")
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    with httpx.Client() as client:
        volume = client.post(base, headers=hdrs, json={"volume": {"size": "2"}}).json()["volume"]
        shown = wait_for_status(client, f"{base}/{volume['id']}", hdrs, "available")
        assert shown["os-vol-host-attr:host"] == "e2ehost@file-1#file-1"
        assert shown["migration_status"] is None
        assert client.delete(f"{base}/{volume['id']}", headers=hdrs).status_code == 202
        assert wait_for_404(client, f"{base}/{volume['id']}", hdrs).status_code == 404


BAD_SIZES = [
    ({"volume": {"size": 0}}, "Invalid input for field/attribute size. Value: 0. 0 is less than the minimum of 1"),
    ({"volume": {"size": -1}}, "Invalid input for field/attribute size. Value: -1. -1 is less than the minimum of 1"),
    ({"volume": {"size": "abc"}}, "Invalid input for field/attribute size. Value: abc. 'abc' does not match '^[0-9]+$'"),
    ({"volume": {"size": 1.5}}, "Invalid input for field/attribute size. Value: 1.5. 1.5 is not of type 'integer', 'string', 'null'"),
    ({"volume": {}}, "The server could not comply with the request since it is either malformed or otherwise incorrect."),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), BAD_SIZES)
def test_bad_size_leaves_nothing_behind(
    cluster: Cluster, project: str, body: dict[str, object], message: str
) -> None:
    files_before = volume_files(cluster)
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes", headers=headers(project), json=body
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"badRequest": {"code": 400, "message": message}}
    assert REQUEST_ID.match(response.headers["x-openstack-request-id"])
    _assert_nothing_left(cluster, project, files_before)


def test_missing_body_is_a_clean_400(cluster: Cluster, project: str) -> None:
    files_before = volume_files(cluster)
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers={"X-Auth-Token": f"u1:{project}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert set(response.json()) == {"badRequest"}
    _assert_nothing_left(cluster, project, files_before)


def test_malformed_json(cluster: Cluster, project: str) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=headers(project),
            content=b'{"volume": {"size": 1,',
        )
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": "Malformed request body"}}


def test_project_mismatch_is_malformed_url(cluster: Cluster, project: str) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/00000000000000000000000000000abc/volumes",
            headers=headers(project),
            json={"volume": {"size": 1}},
        )
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": "Malformed request url"}}
    assert db_rows(cluster, "select id from volumes where project_id = ?", project) == []


def test_quota_exceeded_is_413_and_gives_everything_back(cluster: Cluster, project: str) -> None:
    files_before = volume_files(cluster)
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=headers(project),
            json={"volume": {"size": 1001}},
        )
    assert response.status_code == 413
    fault = response.json()["overLimit"]
    assert fault["code"] == 413 and fault["retryAfter"] == "0"
    assert fault["message"].startswith("VolumeSizeExceedsAvailableQuota: ")
    _assert_nothing_left(cluster, project, files_before)


def test_unknown_volume_type_is_404(cluster: Cluster, project: str) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=headers(project),
            json={"volume": {"size": 1, "volume_type": "nope"}},
        )
    assert response.status_code == 404
    assert response.json() == {
        "itemNotFound": {"code": 404, "message": "Volume type with name nope could not be found."}
    }


def test_other_projects_volume_is_not_found(cluster: Cluster, project: str) -> None:
    with httpx.Client() as client:
        volume = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=headers(project),
            json={"volume": {"size": 1}},
        ).json()["volume"]
        intruder = "f" * 32
        for method in ("GET", "DELETE"):
            response = client.request(
                method,
                f"{cluster.rest_url}/v3/{intruder}/volumes/{volume['id']}",
                headers=headers(intruder),
            )
            assert response.status_code == 404, method
        url = f"{cluster.rest_url}/v3/{project}/volumes/{volume['id']}"
        wait_for_status(client, url, headers(project), "available")
        assert client.delete(url, headers=headers(project)).status_code == 202
        assert wait_for_404(client, url, headers(project)).status_code == 404


def _assert_nothing_left(cluster: Cluster, project: str, files_before: list[object]) -> None:
    assert db_rows(cluster, "select id from volumes where project_id = ?", project) == []
    assert db_rows(cluster, "select id from reservations where project_id = ?", project) == []
    usages = db_rows(
        cluster, "select in_use, reserved from quota_usages where project_id = ?", project
    )
    assert all(row == (0, 0) for row in usages)
    assert volume_files(cluster) == files_before
