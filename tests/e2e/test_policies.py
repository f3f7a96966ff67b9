"""Cinder's default policies through the real product (noauth): a project reader reads and may
not write, a caller without a role in the project may not read, members and admins as before.
Noauth's ``user:project:roles`` token narrows a user's roles (``reader``; empty: none)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers


def _forbidden(response: httpx.Response, rule: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {
        "forbidden": {"code": 403, "message": f"Policy doesn't allow {rule} to be performed."}
    }


def _as(project: str, roles: str, user: str = "u1") -> dict[str, str]:
    return headers(project, user=user) | {"X-Auth-Token": f"{user}:{project}:{roles}"}


def test_a_reader_reads_and_may_not_write(cluster: Cluster, project: str) -> None:
    member, reader = headers(project), _as(project, "reader")
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    body: dict[str, Any] = {"volume": {"size": 1, "name": "r"}}
    with httpx.Client() as client:
        _forbidden(client.post(base, headers=reader, json=body), "volume:create")

        created = client.post(base, headers=member, json=body)
        assert created.status_code == 202, created.text
        volume_id = created.json()["volume"]["id"]
        url = f"{base}/{volume_id}"

        listed = client.get(base, headers=reader)
        assert listed.status_code == 200
        assert volume_id in [v["id"] for v in listed.json()["volumes"]]
        shown = client.get(url, headers=reader)
        assert shown.status_code == 200
        # Gated fields follow the table: the tenant to project readers, the host to admins.
        assert shown.json()["volume"]["os-vol-tenant-attr:tenant_id"] == project
        assert "os-vol-host-attr:host" not in shown.json()["volume"]
        assert client.get(f"{url}/metadata", headers=reader).status_code == 200
        assert client.get(f"{cluster.rest_url}/v3/{project}/types", headers=reader).status_code == (
            200
        )
        quota_url = f"{cluster.rest_url}/v3/{project}/os-quota-sets/{project}"
        assert client.get(quota_url, headers=reader).status_code == 200

        meta = {"metadata": {"k": "v"}}
        _forbidden(client.put(url, headers=reader, json={"volume": {"name": "x"}}), "volume:update")
        _forbidden(
            client.post(f"{url}/metadata", headers=reader, json=meta),
            "volume:create_volume_metadata",
        )
        _forbidden(
            client.put(f"{url}/metadata", headers=reader, json=meta),
            "volume:update_volume_metadata",
        )
        _forbidden(
            client.delete(f"{url}/metadata/k", headers=reader), "volume:delete_volume_metadata"
        )
        _forbidden(client.delete(url, headers=reader), "volume:delete")

        # The member still does all of it.
        assert client.post(f"{url}/metadata", headers=member, json=meta).status_code == 200
        assert client.delete(url, headers=member).status_code == 202


def test_no_role_in_the_project_may_not_read(cluster: Cluster, project: str) -> None:
    nobody = _as(project, "")
    base = f"{cluster.rest_url}/v3/{project}"
    with httpx.Client() as client:
        _forbidden(client.get(f"{base}/volumes", headers=nobody), "volume:get_all")
        _forbidden(client.get(f"{base}/volumes/detail", headers=nobody), "volume:get_all")
        _forbidden(client.get(f"{base}/types", headers=nobody), "volume_extension:type_get_all")
        _forbidden(
            client.get(f"{base}/os-quota-sets/{project}", headers=nobody),
            "volume_extension:quotas:show",
        )
        # Cinder checks no policy for the zones.
        assert client.get(f"{base}/os-availability-zone", headers=nobody).status_code == 200


def test_a_token_may_not_add_roles(cluster: Cluster, project: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/volumes"
    with httpx.Client() as client:
        refused = client.get(url, headers=_as(project, "admin"))
        assert refused.status_code == 401
        # An admin's token narrowed to reader is a reader.
        admin_reader = _as(project, "reader", user="admin")
        assert client.get(url, headers=admin_reader).status_code == 200
        services = f"{cluster.rest_url}/v3/{project}/os-services"
        _forbidden(client.get(services, headers=admin_reader), "volume_extension:services:index")
