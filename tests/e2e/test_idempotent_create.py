"""A create retried with the same X-OpenStack-Request-ID (and project) answers the volume the
first one made, once, even when the retries run at once: a cindermesh guarantee (Cinder makes
one volume per request)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers, wait_for_404, wait_for_status


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _usage(cluster: Cluster, project: str) -> dict[str, tuple[int, int]]:
    rows = db_rows(
        cluster,
        "select resource, in_use, reserved from quota_usages where project_id = ?",
        project,
    )
    return {resource: (in_use, reserved) for resource, in_use, reserved in rows}


def test_a_retried_create_answers_the_same_volume(cluster: Cluster, project: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/volumes"
    hdrs = headers(project) | {"X-OpenStack-Request-ID": _request_id()}
    body = {"volume": {"size": 1, "name": "once"}}
    first = httpx.post(url, headers=hdrs, json=body, timeout=30)
    again = httpx.post(url, headers=hdrs, json=body, timeout=30)
    assert first.status_code == again.status_code == 202
    assert first.json()["volume"]["id"] == again.json()["volume"]["id"]
    assert again.headers["x-openstack-request-id"] == hdrs["X-OpenStack-Request-ID"]
    rows = db_rows(cluster, "select id from volumes where project_id = ?", project)
    assert rows == [(first.json()["volume"]["id"],)]
    assert _usage(cluster, project)["volumes"] == (1, 0)


def test_concurrent_retries_make_one_volume(cluster: Cluster, project: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/volumes"
    hdrs = headers(project) | {"X-OpenStack-Request-ID": _request_id()}

    async def five() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(client.post(url, headers=hdrs, json={"volume": {"size": 2}}) for _ in range(5))
            )

    responses = asyncio.run(five())
    assert [r.status_code for r in responses] == [202] * 5
    assert len({r.json()["volume"]["id"] for r in responses}) == 1
    assert len(db_rows(cluster, "select id from volumes where project_id = ?", project)) == 1
    usage = _usage(cluster, project)
    assert usage["volumes"] == (1, 0) and usage["gigabytes"] == (2, 0)


def test_other_request_ids_and_projects_make_their_own(cluster: Cluster, project: str) -> None:
    other_project = uuid.uuid4().hex
    request_id = _request_id()
    made = set()
    for target in (project, other_project):
        response = httpx.post(
            f"{cluster.rest_url}/v3/{target}/volumes",
            headers=headers(target) | {"X-OpenStack-Request-ID": request_id},
            json={"volume": {"size": 1}},
            timeout=30,
        )
        assert response.status_code == 202
        made.add(response.json()["volume"]["id"])
    plain = httpx.post(
        f"{cluster.rest_url}/v3/{project}/volumes",
        headers=headers(project),
        json={"volume": {"size": 1}},
        timeout=30,
    )
    made.add(plain.json()["volume"]["id"])
    assert len(made) == 3


def test_a_retry_after_the_volume_was_deleted_makes_a_new_one(
    cluster: Cluster, project: str
) -> None:
    url = f"{cluster.rest_url}/v3/{project}/volumes"
    hdrs = headers(project) | {"X-OpenStack-Request-ID": _request_id()}
    first = httpx.post(url, headers=hdrs, json={"volume": {"size": 1}}, timeout=30).json()
    volume_id = first["volume"]["id"]
    with httpx.Client(timeout=30) as client:
        wait_for_status(client, f"{url}/{volume_id}", headers(project), "available")
        assert client.delete(f"{url}/{volume_id}", headers=headers(project)).status_code == 202
        assert wait_for_404(client, f"{url}/{volume_id}", headers(project)).status_code == 404
    second = httpx.post(url, headers=hdrs, json={"volume": {"size": 1}}, timeout=30)
    assert second.status_code == 202
    assert second.json()["volume"]["id"] != volume_id
