"""A disabled backend gets no volumes (Cinder's scheduler ignores disabled services): with the
only backend disabled through ``os-services`` a create ends in ``error`` with Cinder's user
message; enabled again, creates are placed. Through Envoy against the real processes."""

from __future__ import annotations

import time

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_status

BACKEND = "e2ehost@file-1"
#: The scheduler reads the disabled backends at most every second (SchedulerConfig).
REFRESH = 1.0


def _create(client: httpx.Client, base: str, hdrs: dict[str, str]) -> str:
    response = client.post(f"{base}/volumes", headers=hdrs, json={"volume": {"size": 1}})
    assert response.status_code == 202, response.text
    volume_id: str = response.json()["volume"]["id"]
    return volume_id


def test_disabled_backend_gets_no_volumes(cluster: Cluster, project: str) -> None:
    admin = headers(project, user="admin", version="3.3")
    base = f"{cluster.rest_url}/v3/{project}"
    service = {"host": BACKEND, "binary": "cinder-volume"}
    with httpx.Client() as client:
        disabled = client.put(f"{base}/os-services/disable", headers=admin, json=service)
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        try:
            time.sleep(REFRESH + 0.2)
            failed = _create(client, base, admin)
            wait_for_status(client, f"{base}/volumes/{failed}", admin, "error")
            messages = client.get(f"{base}/messages", headers=admin).json()["messages"]
            (message,) = [m for m in messages if m.get("resource_uuid") == failed]
            assert message["event_id"] == "VOLUME_VOLUME_001_003"
            assert message["user_message"] == (
                "schedule allocate volume:Could not find any available weighted backend."
            )
        finally:
            enabled = client.put(f"{base}/os-services/enable", headers=admin, json=service)
            assert enabled.status_code == 200 and enabled.json()["disabled"] is False
            time.sleep(REFRESH + 0.2)  # no later create may see the backend disabled

        placed = _create(client, base, admin)
        wait_for_status(client, f"{base}/volumes/{placed}", admin, "available")
