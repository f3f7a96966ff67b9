"""Each error Cinder 29.0.0 answered in tests/golden/, replayed against the real gateway:
same status and the same body (with our project and volume ids). Where we deliberately do
better than Cinder (tests/golden/README.md), the better answer is asserted instead."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.golden import golden
from tests.e2e.helpers import wait_for_404, wait_for_status

GOLDEN_PROJECT = "5ca1ab1e000000000000000000000001"

SAME_AS_CINDER = [
    "err-bad-az",
    "err-bad-type",
    "err-no-size",
    "err-size-0",
    "err-size-abc",
    "err-size-float",
    "err-size-negative",
    "err-name-too-long",
    "err-malformed-json",
    "err-project-mismatch",
    "err-microversion-too-high",
    "err-volume-not-found",
]


def _send(
    cluster: Cluster, project: str, recorded: dict[str, Any], path: str, user: str = ""
) -> httpx.Response:
    """Replays a recorded request; ``user`` replaces the recorded one (Cinder's noauth made
    every caller an admin, ours only the configured ones)."""
    request = recorded["request"]
    token = request["token"].replace(GOLDEN_PROJECT, project) if request["token"] else None
    if token and user:
        token = f"{user}:{project}"
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["X-Auth-Token"] = token
    if request["microversion"]:
        hdrs["OpenStack-API-Version"] = f"volume {request['microversion']}"
    body = request["body"]
    content = None if body is None else body if isinstance(body, str) else json.dumps(body)
    return httpx.request(
        request["method"],
        cluster.rest_url + path.replace(GOLDEN_PROJECT, project),
        headers=hdrs,
        content=content,
    )


@pytest.mark.parametrize("name", SAME_AS_CINDER)
def test_error_as_cinder(cluster: Cluster, project: str, name: str) -> None:
    recorded = golden(name)
    response = _send(cluster, project, recorded, recorded["request"]["path"])
    assert response.status_code == recorded["status"]
    assert response.headers["content-type"] == "application/json"
    assert response.json() == recorded["body"]
    for header in ("openstack-api-version", "vary"):
        assert response.headers.get(header) == recorded["headers"].get(header), header
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_deleted_volume_is_not_found_as_cinder(cluster: Cluster, project: str) -> None:
    recorded = golden("err-volume-deleted")
    hdrs = {"X-Auth-Token": f"demo:{project}"}
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    with httpx.Client() as client:
        volume_id = client.post(base, headers=hdrs, json={"volume": {"size": 1}}).json()["volume"][
            "id"
        ]
        wait_for_status(client, f"{base}/{volume_id}", hdrs, "available")
        deleted = client.delete(f"{base}/{volume_id}", headers=hdrs)
        assert deleted.status_code == golden("volume-delete")["status"]
        assert deleted.content == b""
        response = wait_for_404(client, f"{base}/{volume_id}", hdrs)
    old_id = recorded["request"]["path"].rsplit("/", 1)[1]
    assert response.status_code == recorded["status"]
    assert response.json() == json.loads(json.dumps(recorded["body"]).replace(old_id, volume_id))


def test_unknown_field_is_accepted_as_cinder(cluster: Cluster, project: str) -> None:
    recorded = golden("err-unknown-field")
    response = _send(cluster, project, recorded, recorded["request"]["path"], user="admin")
    assert response.status_code == recorded["status"] == 202
    assert set(response.json()["volume"]) == set(recorded["body"]["volume"])
    hdrs = {"X-Auth-Token": f"admin:{project}"}
    url = f"{cluster.rest_url}/v3/{project}/volumes/{response.json()['volume']['id']}"
    with httpx.Client() as client:
        wait_for_status(client, url, hdrs, "available")
        client.delete(url, headers=hdrs)
        wait_for_404(client, url, hdrs)


@pytest.mark.parametrize(
    ("name", "status", "fault"),
    [
        # Cinder: 500 computeFault. Ours: a clean 400.
        ("err-empty-body", 400, "badRequest"),
        # Cinder: webob's own 404 body. Ours: Cinder's fault shape.
        ("err-unknown-path", 404, "itemNotFound"),
        # Cinder: webob's own 404 body for a wrong method. Ours: the same 404, Cinder's shape.
        ("err-method-not-allowed", 404, "itemNotFound"),
    ],
)
def test_where_we_do_better_than_cinder(
    cluster: Cluster, project: str, name: str, status: int, fault: str
) -> None:
    recorded = golden(name)
    response = _send(cluster, project, recorded, recorded["request"]["path"])
    assert response.status_code == status
    body = response.json()
    assert list(body) == [fault]
    assert body[fault]["code"] == status and body[fault]["message"]
    assert response.headers["x-openstack-request-id"].startswith("req-")
