"""The placement extension over REST through Envoy (``GET /v3/{p}/volumes/{id}/placement``,
``docs/placement.md``): the scheduler's decision for each attempt, readable by the volume's
owner, a 404 for another project; a volume no backend can take ends in ``error`` with its
placement naming the filter that removed the last candidate, and so does its user message."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_status

#: Cinder's user_message for a create no backend could take.
NO_BACKEND_TEXT = "schedule allocate volume:Could not find any available weighted backend."
POOL_ID = re.compile(r"^[^@#]+@[^@#]+#[^@#]+$")
ATTEMPT_KEYS = {
    "attempt",
    "decided_at",
    "scheduler",
    "result",
    "reason",
    "chosen",
    "last_filter",
    "retry_hosts",
    "last_error",
    "request",
    "disabled",
    "filters",
    "weighed",
}


def _create(client: httpx.Client, base: str, hdrs: dict[str, str], **volume: Any) -> str:
    response = client.post(f"{base}/volumes", headers=hdrs, json={"volume": {"size": 1, **volume}})
    assert response.status_code == 202, response.text
    volume_id: str = response.json()["volume"]["id"]
    return volume_id


def _placement(client: httpx.Client, url: str, hdrs: dict[str, str]) -> dict[str, Any]:
    response = client.get(url, headers=hdrs)
    assert response.status_code == 200, response.text
    assert response.headers["x-openstack-request-id"].startswith("req-")
    body: dict[str, Any] = response.json()
    assert set(body) == {"placement"}
    placement: dict[str, Any] = body["placement"]
    assert set(placement) == {"volume_id", "host", "status", "attempts"}
    for attempt in placement["attempts"]:
        assert set(attempt) == ATTEMPT_KEYS, attempt
        dt.datetime.fromisoformat(attempt["decided_at"])
        for one in attempt["filters"]:
            assert set(one) == {"name", "hosts_in", "passed", "rejected"}
            assert all(POOL_ID.match(p) for p in one["passed"]), one
            assert all(set(r) == {"host", "reason"} for r in one["rejected"]), one
        for weighed in attempt["weighed"]:
            assert set(weighed) == {"host", "weight", "weights"}
    return placement


def test_the_owner_reads_where_its_volume_went_and_why(cluster: Cluster, project: str) -> None:
    base = f"{cluster.rest_url}/v3/{project}"
    owner = headers(project)
    admin = headers(project, user="admin")
    with httpx.Client(timeout=30) as client:
        volume_id = _create(client, base, owner, name="placed")
        wait_for_status(client, f"{base}/volumes/{volume_id}", owner, "available")
        host = client.get(f"{base}/volumes/{volume_id}", headers=admin).json()["volume"][
            "os-vol-host-attr:host"
        ]

        placement = _placement(client, f"{base}/volumes/{volume_id}/placement", owner)
        assert placement["volume_id"] == volume_id
        assert (placement["host"], placement["status"]) == (host, "available")
        assert placement["attempts"], placement
        last = placement["attempts"][-1]
        assert last["attempt"] == len(placement["attempts"])
        assert (last["result"], last["reason"], last["chosen"]) == ("placed", "", host)
        assert last["last_filter"] is None
        assert last["scheduler"]
        assert last["request"]["size_gb"] == 1
        names = [f["name"] for f in last["filters"]]
        assert "CapacityFilter" in names and "CapabilitiesFilter" in names
        assert host in last["filters"][-1]["passed"]
        assert last["weighed"][0]["host"] == host

        # Every 3.x microversion, and the URL without the project.
        for version in ("3.0", "3.71"):
            shown = _placement(
                client, f"{base}/volumes/{volume_id}/placement", headers(project, version=version)
            )
            assert shown == placement
        bare = f"{cluster.rest_url}/v3/volumes/{volume_id}/placement"
        assert _placement(client, bare, owner) == placement
        # A project reader reads it too.
        reader = {**owner, "X-Auth-Token": f"u2:{project}:reader"}
        assert _placement(client, f"{base}/volumes/{volume_id}/placement", reader) == placement

        # Another project's volume is not found, as volume show answers.
        other = uuid.uuid4().hex
        refused = client.get(
            f"{cluster.rest_url}/v3/{other}/volumes/{volume_id}/placement", headers=headers(other)
        )
        assert refused.status_code == 404, refused.text
        assert refused.json() == {
            "itemNotFound": {"code": 404, "message": f"Volume {volume_id} could not be found."}
        }
        missing = str(uuid.uuid4())
        unknown = client.get(f"{base}/volumes/{missing}/placement", headers=owner)
        assert unknown.status_code == 404
        assert unknown.json()["itemNotFound"]["message"] == f"Volume {missing} could not be found."

        deleted = client.delete(f"{base}/volumes/{volume_id}", headers=owner)
        assert deleted.status_code == 202, deleted.text


def test_a_volume_no_backend_can_take_names_the_filter(cluster: Cluster, project: str) -> None:
    base = f"{cluster.rest_url}/v3/{project}"
    owner = headers(project)
    admin = headers(project, user="admin")
    type_name = f"nowhere-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=30) as client:
        made = client.post(
            f"{base}/types",
            headers=admin,
            json={
                "volume_type": {
                    "name": type_name,
                    "extra_specs": {"capabilities:nonexistent": "x"},
                }
            },
        )
        assert made.status_code == 200, made.text
        type_id = made.json()["volume_type"]["id"]
        try:
            volume_id = _create(client, base, owner, name="nowhere", volume_type=type_name)
            wait_for_status(client, f"{base}/volumes/{volume_id}", owner, "error")

            placement = _placement(client, f"{base}/volumes/{volume_id}/placement", owner)
            assert (placement["host"], placement["status"]) == (None, "error")
            assert placement["attempts"], placement
            last = placement["attempts"][-1]
            assert (last["result"], last["chosen"]) == ("no_valid_backend", None)
            assert last["last_filter"] == "CapabilitiesFilter"
            assert last["reason"].startswith("No valid backend was found."), last["reason"]
            assert last["request"]["extra_specs"] == {"capabilities:nonexistent": "x"}
            (capabilities,) = [f for f in last["filters"] if f["name"] == "CapabilitiesFilter"]
            assert capabilities["passed"] == []
            assert capabilities["hosts_in"] == len(capabilities["rejected"]) > 0
            assert all(r["reason"] for r in capabilities["rejected"])
            assert last["weighed"] == []

            listed = client.get(f"{base}/messages", headers=headers(project, version="3.3"))
            assert listed.status_code == 200, listed.text
            (message,) = [m for m in listed.json()["messages"] if m["resource_uuid"] == volume_id]
            assert message["event_id"] == "VOLUME_VOLUME_001_003"
            assert message["user_message"].startswith(NO_BACKEND_TEXT), message
            assert "CapabilitiesFilter" in message["user_message"], message

            deleted = client.delete(f"{base}/volumes/{volume_id}", headers=owner)
            assert deleted.status_code == 202, deleted.text
        finally:
            client.delete(f"{base}/types/{type_id}", headers=admin)
