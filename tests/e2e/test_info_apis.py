"""The admin and info APIs Tempest checks, through Envoy against the real processes: extensions,
the os-services actions, os-hosts, capabilities and user messages, each with Tempest's keys
written out (tempest/lib/api_schema/response/volume/*.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import headers, wait_for_status

BACKEND = "e2ehost@file-1"


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A product of this module's own: disabling and freezing its backend (which the scheduler
    then avoids, and which leaves a disabled_reason) must not reach other modules' tests."""
    running = make_cluster(tmp_path_factory.mktemp("info-cluster"))
    running.start()
    yield running
    running.stop()


def _keys(body: dict[str, Any], required: set[str], optional: set[str] = frozenset()) -> None:
    """Tempest's ``required`` and ``additionalProperties: False``."""
    assert required <= set(body), (required - set(body), body)
    assert set(body) <= required | optional, (set(body) - required - optional, body)


def _bad(message: str) -> dict[str, Any]:
    return {"badRequest": {"code": 400, "message": message}}


def test_extensions(cluster: Cluster, project: str) -> None:
    with httpx.Client() as client:
        for url in (
            f"{cluster.rest_url}/v3/{project}/extensions",
            f"{cluster.rest_url}/v3/extensions",
        ):
            response = client.get(url, headers=headers(project))
            assert response.status_code == 200
            extensions = response.json()["extensions"]
            for extension in extensions:
                _keys(extension, {"updated", "links", "alias", "name", "description"})
                assert extension["links"] == []
            assert "Hosts" in [e["name"] for e in extensions]
            aliases = {e["alias"] for e in extensions}
            assert {"os-services", "os-hosts", "capabilities", "scheduler-stats"} <= aliases


SERVICE_KEYS = {"binary", "disabled_reason", "host", "state", "status", "updated_at", "zone"}
SERVICE_OPTIONAL = {"frozen", "replication_status", "active_backend_id", "backend_state"}


def _volume_service(client: httpx.Client, cluster: Cluster, project: str) -> dict[str, Any]:
    url = f"{cluster.rest_url}/v3/{project}/os-services?binary=cinder-volume"
    services = client.get(url, headers=headers(project, user="admin")).json()["services"]
    for service in services:
        _keys(service, SERVICE_KEYS, SERVICE_OPTIONAL)
    (volume,) = [s for s in services if s["host"] == BACKEND]
    return volume


def test_service_enable_disable(own_cluster: Cluster, project: str) -> None:
    cluster = own_cluster
    admin = headers(project, user="admin")
    base = f"{cluster.rest_url}/v3/{project}/os-services"
    with httpx.Client() as client:
        refused = client.put(
            f"{base}/disable", headers=headers(project), json={"host": BACKEND, "binary": "x"}
        )
        assert refused.status_code == 403

        body = {"host": BACKEND, "binary": "cinder-volume"}
        disabled = client.put(f"{base}/disable", headers=admin, json=body)
        assert disabled.status_code == 200
        assert disabled.json() == {
            "host": BACKEND,
            "service": "",
            "binary": "cinder-volume",
            "status": "disabled",
            "disabled": True,
        }
        assert _volume_service(client, cluster, project)["status"] == "disabled"

        reason = client.put(
            f"{base}/disable-log-reason", headers=admin, json={**body, "disabled_reason": "fix"}
        )
        assert reason.status_code == 200
        _keys(reason.json(), {"disabled", "status", "host", "service", "binary", "disabled_reason"})
        assert reason.json()["disabled_reason"] == "fix"
        listed = _volume_service(client, cluster, project)
        assert (listed["status"], listed["disabled_reason"]) == ("disabled", "fix")

        enabled = client.put(f"{base}/enable", headers=admin, json=body)
        assert enabled.status_code == 200
        assert enabled.json()["status"] == "enabled" and enabled.json()["disabled"] is False
        assert _volume_service(client, cluster, project)["status"] == "enabled"

        # Tempest's negative tests.
        missing = client.put(
            f"{base}/enable",
            headers=admin,
            json={"host": "invalid_host", "binary": "cinder-volume"},
        )
        assert missing.status_code == 404
        assert missing.json() == {
            "itemNotFound": {
                "code": 404,
                "message": "Service cinder-volume could not be found on host invalid_host.",
            }
        }
        wrong = client.put(
            f"{base}/disable", headers=admin, json={"host": BACKEND, "binary": "invalid_binary"}
        )
        assert wrong.status_code == 404
        no_reason = client.put(
            f"{base}/disable-log-reason", headers=admin, json={**body, "disabled_reason": None}
        )
        assert no_reason.status_code == 400
        assert no_reason.json() == _bad(
            "Invalid input for field/attribute disabled_reason. Value: None. "
            "None is not of type 'string'"
        )
        no_host = client.put(f"{base}/enable", headers=admin, json={"binary": "cinder-volume"})
        assert no_host.json() == _bad("Invalid input received: Host field is missing.")
        unknown = client.put(f"{base}/set-log", headers=admin, json={})
        assert unknown.status_code == 400
        assert unknown.json() == _bad("Invalid input received: Unknown action")


def test_freeze_thaw_and_failover(own_cluster: Cluster, project: str) -> None:
    cluster = own_cluster
    admin = headers(project, user="admin")
    base = f"{cluster.rest_url}/v3/{project}/os-services"
    with httpx.Client() as client:
        for action in ("freeze", "thaw", "failover_host"):
            invalid = client.put(f"{base}/{action}", headers=admin, json={"host": "invalid_host"})
            assert invalid.status_code == 400, action
            assert invalid.json() == _bad("No service found with host=invalid_host")

        frozen = client.put(f"{base}/freeze", headers=admin, json={"host": BACKEND})
        assert frozen.status_code == 200 and frozen.content == b""
        listed = _volume_service(client, cluster, project)
        assert (listed["frozen"], listed["status"], listed["disabled_reason"]) == (
            True,
            "disabled",
            "frozen",
        )
        again = client.put(f"{base}/freeze", headers=admin, json={"host": BACKEND})
        assert again.json() == _bad(
            "Invalid input received: No service could be changed: frozen in "
            f"['{BACKEND}'] must be False to failover."
        )
        thawed = client.put(f"{base}/thaw", headers=admin, json={"host": BACKEND})
        assert thawed.status_code == 200 and thawed.content == b""
        listed = _volume_service(client, cluster, project)
        assert (listed["frozen"], listed["status"]) == (False, "enabled")

        failover = client.put(f"{base}/failover_host", headers=admin, json={"host": BACKEND})
        assert failover.status_code == 400
        assert "replication_status" in failover.json()["badRequest"]["message"]


HOST_KEYS = {"service-status", "service", "zone", "service-state", "host_name", "last-update"}
RESOURCE_KEYS = {
    "volume_count",
    "total_volume_gb",
    "total_snapshot_gb",
    "project",
    "host",
    "snapshot_count",
}


def test_hosts(cluster: Cluster, project: str) -> None:
    admin = headers(project, user="admin")
    base = f"{cluster.rest_url}/v3/{project}/os-hosts"
    with httpx.Client() as client:
        assert client.get(base, headers=headers(project)).status_code == 403
        volume = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes", headers=admin, json={"volume": {"size": 1}}
        ).json()["volume"]
        wait_for_status(
            client, f"{cluster.rest_url}/v3/{project}/volumes/{volume['id']}", admin, "available"
        )
        response = client.get(base, headers=admin)
        assert response.status_code == 200
        hosts = response.json()["hosts"]
        assert len(hosts) >= 2
        for host in hosts:
            _keys(host, HOST_KEYS)
            assert host["service-status"] in ("available", "unavailable")
            assert host["service-state"] in ("enabled", "disabled")
        volume_hosts = [h["host_name"] for h in hosts if h["service"] == "cinder-volume"]
        assert volume_hosts == [BACKEND]

        shown = client.get(f"{base}/{BACKEND}", headers=admin)
        assert shown.status_code == 200
        resources = [entry["resource"] for entry in shown.json()["host"]]
        for entry in shown.json()["host"]:
            _keys(entry, {"resource"})
        for resource in resources:
            _keys(resource, RESOURCE_KEYS)
            assert all(isinstance(v, str) for v in resource.values())
        assert resources[0]["project"] == "(total)"
        mine = [r for r in resources if r["project"] == project]
        assert mine and mine[0]["volume_count"] == "1" and mine[0]["total_volume_gb"] == "1"

        missing = client.get(f"{base}/nohost", headers=admin)
        assert missing.status_code == 404


CAPABILITY_KEYS = {
    "pool_name",
    "volume_backend_name",
    "namespace",
    "visibility",
    "driver_version",
    "vendor_name",
    "properties",
    "storage_protocol",
    "replication_targets",
    "display_name",
    "description",
}


def test_capabilities(cluster: Cluster, project: str) -> None:
    admin = headers(project, user="admin")
    with httpx.Client() as client:
        pools = client.get(
            f"{cluster.rest_url}/v3/{project}/scheduler-stats/get_pools?detail=true",
            headers=admin,
        ).json()["pools"]
        # Tempest sends the pool's name unquoted: "#pool" is a fragment, never sent.
        host = pools[0]["name"].partition("#")[0]
        response = client.get(f"{cluster.rest_url}/v3/{project}/capabilities/{host}", headers=admin)
        assert response.status_code == 200
        body = response.json()
        _keys(body, CAPABILITY_KEYS)
        assert body["namespace"] == f"OS::Storage::Capabilities::{BACKEND}"
        for key in ("vendor_name", "volume_backend_name", "storage_protocol"):
            assert body[key] == pools[0]["capabilities"][key]
        for prop in body["properties"].values():
            _keys(prop, {"type", "description", "title"})
        assert body["replication_targets"] == []

        missing = client.get(f"{cluster.rest_url}/v3/{project}/capabilities/nohost", headers=admin)
        assert missing.status_code == 404
        assert missing.json()["itemNotFound"]["message"] == "Can't find service: nohost"
        assert (
            client.get(
                f"{cluster.rest_url}/v3/{project}/capabilities/{host}", headers=headers(project)
            ).status_code
            == 403
        )


MESSAGE_KEYS = {"request_id", "message_level", "event_id", "created_at", "id", "user_message"}
MESSAGE_OPTIONAL = {"links", "guaranteed_until", "resource_uuid", "resource_type"}


def test_user_messages(cluster: Cluster, project: str) -> None:
    admin = headers(project, user="admin", version="3.3")
    base = f"{cluster.rest_url}/v3/{project}"
    with httpx.Client() as client:
        bogus = f"bogus-{uuid.uuid4().hex[:8]}"
        volume_type = client.post(
            f"{base}/types",
            headers=admin,
            json={"volume_type": {"name": bogus, "extra_specs": {"vendor_name": bogus}}},
        ).json()["volume_type"]
        volume = client.post(
            f"{base}/volumes",
            headers=admin,
            json={"volume": {"size": 1, "volume_type": volume_type["id"]}},
        ).json()["volume"]
        wait_for_status(client, f"{base}/volumes/{volume['id']}", admin, "error")

        listed = client.get(f"{base}/messages", headers=admin)
        assert listed.status_code == 200
        _keys(listed.json(), {"messages"})  # Tempest's list schema: no empty messages_links
        messages = listed.json()["messages"]
        paged = client.get(
            f"{base}/messages?limit=1", headers=headers(project, user="admin", version="3.5")
        )
        assert set(paged.json()) == {"messages", "messages_links"}, paged.text
        assert paged.json()["messages_links"][0]["rel"] == "next"
        for message in messages:
            _keys(message, MESSAGE_KEYS, MESSAGE_OPTIONAL)
        (mine,) = [m for m in messages if m.get("resource_uuid") == volume["id"]]
        # Cinder's words, then (ours) the filter that removed the last candidate.
        assert mine["user_message"] == (
            "schedule allocate volume:Could not find any available weighted backend."
            " Filter CapabilitiesFilter removed the last candidate."
        )
        assert mine["event_id"] == "VOLUME_VOLUME_001_003"
        assert (mine["message_level"], mine["resource_type"]) == ("ERROR", "VOLUME")
        assert mine["request_id"].startswith("req-")

        shown = client.get(f"{base}/messages/{mine['id']}", headers=admin)
        assert shown.status_code == 200
        _keys(shown.json(), {"message"})
        assert shown.json()["message"] == mine

        older = client.get(f"{base}/messages", headers=headers(project, user="admin"))
        assert older.status_code == 404

        deleted = client.delete(f"{base}/messages/{mine['id']}", headers=admin)
        assert deleted.status_code == 204 and deleted.content == b""
        gone = client.get(f"{base}/messages/{mine['id']}", headers=admin)
        assert gone.status_code == 404
        assert gone.json() == {
            "itemNotFound": {"code": 404, "message": f"Message {mine['id']} could not be found."}
        }
        again = client.get(f"{base}/messages", headers=admin).json()["messages"]
        assert all(m.get("resource_uuid") != volume["id"] for m in again)
