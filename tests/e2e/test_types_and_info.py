"""Volume types, availability zones, services and pools over REST through Envoy, against the
real processes, compared with Cinder 29.0.0's golden responses (shapes, codes, messages)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.golden import assert_cinder_headers, assert_shape, golden, shape_differences
from tests.e2e.helpers import db_rows, headers, wait_for_404, wait_for_status


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _forbidden(rule: str) -> dict[str, Any]:
    message = f"Policy doesn't allow {rule} to be performed."
    return {"forbidden": {"code": 403, "message": message}}


def test_type_list_and_default_as_cinder_shows_them(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    base = f"{cluster.rest_url}/v3/{project}/types"
    with httpx.Client() as client:
        listed = client.get(base, headers=admin)
        assert listed.status_code == 200
        assert_cinder_headers(listed.headers, "types-list")
        default = [t for t in listed.json()["volume_types"] if t["name"] == "__DEFAULT__"]
        assert len(default) == 1
        assert_shape({"volume_types": default}, "types-list")
        assert default[0]["description"] == "Default Volume Type"
        assert default[0]["os-volume-type-access:is_public"] is True

        shown = client.get(f"{base}/default", headers=admin)
        assert shown.status_code == 200
        assert_cinder_headers(shown.headers, "types-default")
        assert_shape(shown.json(), "types-default")  # no os-volume-type-access:is_public here
        assert shown.json()["volume_type"]["id"] == default[0]["id"]

        # By id (not by name), without a project in the URL, and for a non-admin: no
        # qos_specs_id, and the same shape otherwise.
        by_id = client.get(f"{cluster.rest_url}/v3/types/{default[0]['id']}", headers=user)
        assert by_id.status_code == 200
        cinder_view = dict(golden("types-list")["body"]["volume_types"][0])
        del cinder_view["qos_specs_id"]  # admin only
        assert shape_differences(by_id.json()["volume_type"], cinder_view) == []
        by_name = client.get(f"{base}/__DEFAULT__", headers=user)
        assert by_name.status_code == 404
        assert by_name.json() == {
            "itemNotFound": {"code": 404, "message": "Volume type __DEFAULT__ could not be found."}
        }
        bad = client.get(f"{base}?is_public=maybe", headers=admin)
        assert bad.status_code == 400
        assert bad.json() == {
            "badRequest": {"code": 400, "message": "Invalid is_public filter [maybe]"}
        }


def test_type_create_use_and_delete(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    types_url = f"{cluster.rest_url}/v3/{project}/types"
    volumes_url = f"{cluster.rest_url}/v3/{project}/volumes"
    name = _unique("gold")
    # Keys in another scope than `capabilities:` do not take part in scheduling.
    specs = {"volume_backend_name": "file-1", "RESKEY:availability_zones": "nova", "vendor:k": "x"}
    body = {"volume_type": {"name": name, "description": "fast", "extra_specs": specs}}
    with httpx.Client() as client:
        refused = client.post(types_url, headers=user, json=body)
        assert refused.status_code == 403
        assert refused.json() == _forbidden("volume_extension:type_create")

        created = client.post(types_url, headers=admin, json=body)
        assert created.status_code == 200, created.text
        volume_type = created.json()["volume_type"]
        # Cinder's create view has no qos_specs_id (Tempest's create schema refuses it).
        assert "qos_specs_id" not in volume_type
        listed_shape = volume_type | {"extra_specs": {}, "qos_specs_id": None}
        assert_shape({"volume_types": [listed_shape]}, "types-list")
        assert volume_type["name"] == name and volume_type["extra_specs"] == specs
        assert volume_type["description"] == "fast" and volume_type["is_public"] is True

        again = client.post(types_url, headers=admin, json={"volume_type": {"name": name}})
        assert again.status_code == 409
        assert again.json() == {
            "conflictingRequest": {"code": 409, "message": f"Volume Type {name} already exists."}
        }
        unknown = client.post(types_url, headers=admin, json={"volume_type": {"name": "x", "k": 1}})
        assert unknown.status_code == 400
        assert unknown.json()["badRequest"]["message"] == (
            "Invalid input for field/attribute volume_type. Value: {'k': 1, 'name': 'x'}. "
            "Additional properties are not allowed ('k' was unexpected)"
        )

        # Users see it, with the user-visible extra specs only.
        listed = client.get(types_url, headers=user).json()["volume_types"]
        mine = next(t for t in listed if t["id"] == volume_type["id"])
        assert mine["extra_specs"] == {"RESKEY:availability_zones": "nova"}
        assert "qos_specs_id" not in mine

        # A volume of the new type, by name: its extra specs reach the scheduler's filters.
        made = client.post(
            volumes_url, headers=user, json={"volume": {"size": 1, "volume_type": name}}
        )
        assert made.status_code == 202, made.text
        volume_url = f"{volumes_url}/{made.json()['volume']['id']}"
        assert wait_for_status(client, volume_url, user, "available")["volume_type"] == name

        in_use = client.delete(f"{types_url}/{volume_type['id']}", headers=admin)
        assert in_use.status_code == 400
        assert in_use.json() == {
            "badRequest": {"code": 400, "message": "Target volume type is still in use."}
        }
        assert client.delete(volume_url, headers=user).status_code == 202
        assert wait_for_404(client, volume_url, user).status_code == 404

        not_admin = client.delete(f"{types_url}/{volume_type['id']}", headers=user)
        assert not_admin.status_code == 403
        assert not_admin.json() == _forbidden("volume_extension:type_delete")
        deleted = client.delete(f"{types_url}/{volume_type['id']}", headers=admin)
        assert deleted.status_code == 202 and deleted.content == b""
        gone = client.get(f"{types_url}/{volume_type['id']}", headers=admin)
        assert gone.status_code == 404
        assert gone.json() == {
            "itemNotFound": {
                "code": 404,
                "message": f"Volume type {volume_type['id']} could not be found.",
            }
        }
        assert client.delete(f"{types_url}/{volume_type['id']}", headers=admin).status_code == 404

        default_id = client.get(f"{types_url}/default", headers=admin).json()["volume_type"]["id"]
        refused_default = client.delete(f"{types_url}/{default_id}", headers=admin)
        assert refused_default.status_code == 400
        assert refused_default.json()["badRequest"]["message"] == (
            f"The volume type {default_id} is a default volume type and cannot be deleted."
        )


def test_type_extra_specs_steer_the_scheduler(cluster: Cluster, project: str) -> None:
    """A type no backend satisfies: the volume goes to error (CapabilitiesFilter)."""
    admin, user = headers(project, user="admin"), headers(project)
    name = _unique("nowhere")
    body = {"volume_type": {"name": name, "extra_specs": {"volume_backend_name": "nope"}}}
    with httpx.Client() as client:
        created = client.post(f"{cluster.rest_url}/v3/types", headers=admin, json=body)
        assert created.status_code == 200, created.text
        made = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=user,
            json={"volume": {"size": 1, "volume_type": created.json()["volume_type"]["id"]}},
        )
        assert made.status_code == 202, made.text
        url = f"{cluster.rest_url}/v3/{project}/volumes/{made.json()['volume']['id']}"
        assert wait_for_status(client, url, user, "error")["volume_type"] == name

        # No valid backend: the quota is given back at once, and exactly once.
        usage_sql = (
            "select in_use, reserved from quota_usages where project_id = ? and resource = ?"
        )
        assert db_rows(cluster, usage_sql, project, "volumes") == [(0, 0)]
        assert db_rows(cluster, usage_sql, project, "gigabytes") == [(0, 0)]
        assert client.delete(url, headers=user).status_code == 202
        assert wait_for_404(client, url, user).status_code == 404
        assert db_rows(cluster, usage_sql, project, "volumes") == [(0, 0)]
        assert db_rows(cluster, usage_sql, project, "gigabytes") == [(0, 0)]


def test_private_type_is_for_admins(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    base = f"{cluster.rest_url}/v3/{project}/types"
    body = {"volume_type": {"name": _unique("priv"), "os-volume-type-access:is_public": "False"}}
    with httpx.Client() as client:
        created = client.post(base, headers=admin, json=body).json()["volume_type"]
        assert created["is_public"] is False
        assert created["os-volume-type-access:is_public"] is False
        ids = {t["id"] for t in client.get(base, headers=admin).json()["volume_types"]}
        assert created["id"] not in ids  # admins too see public types unless they ask
        ids = {
            t["id"]
            for t in client.get(f"{base}?is_public=None", headers=admin).json()["volume_types"]
        }
        assert created["id"] in ids
        ids = {
            t["id"]
            for t in client.get(f"{base}?is_public=None", headers=user).json()["volume_types"]
        }
        assert created["id"] not in ids
        assert client.get(f"{base}/{created['id']}", headers=user).status_code == 404
        assert client.get(f"{base}/{created['id']}", headers=admin).status_code == 200


def test_availability_zones(cluster: Cluster, project: str) -> None:
    with httpx.Client() as client:
        for url in (
            f"{cluster.rest_url}/v3/{project}/os-availability-zone",
            f"{cluster.rest_url}/v3/os-availability-zone",
        ):
            response = client.get(url, headers=headers(project))
            assert response.status_code == 200
            assert_cinder_headers(response.headers, "availability-zones")
            assert_shape(response.json(), "availability-zones")
            assert response.json() == {
                "availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]
            }


def test_services(cluster: Cluster, project: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/os-services"
    with httpx.Client() as client:
        refused = client.get(url, headers=headers(project))
        assert refused.status_code == 403
        assert refused.json() == _forbidden("volume_extension:services:index")

        response = client.get(url, headers=headers(project, user="admin"))
        assert response.status_code == 200
        assert_cinder_headers(response.headers, "services")
        assert_shape(response.json(), "services")
        services = response.json()["services"]
        assert [(s["binary"], s["host"], s["state"]) for s in services] == [
            ("cinder-scheduler", "e2ehost", "up"),
            ("cinder-volume", "e2ehost@file-1", "up"),
        ]

        newer = client.get(url, headers=headers(project, user="admin", version="3.49")).json()
        scheduler, volume = newer["services"]
        assert scheduler["cluster"] is None and "backend_state" not in scheduler
        assert volume["cluster"] is None and volume["backend_state"] == "up"

        filtered = client.get(
            f"{url}?binary=cinder-volume&host=e2ehost", headers=headers(project, user="admin")
        )
        assert [s["host"] for s in filtered.json()["services"]] == ["e2ehost@file-1"]


def test_pools(cluster: Cluster, project: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/scheduler-stats/get_pools"
    admin = headers(project, user="admin")
    with httpx.Client() as client:
        refused = client.get(url, headers=headers(project))
        assert refused.status_code == 403
        assert refused.json() == _forbidden("scheduler_extension:scheduler_stats:get_pools")

        summary = client.get(url, headers=admin)
        assert summary.status_code == 200
        assert_cinder_headers(summary.headers, "pools")
        assert_shape(summary.json(), "pools")
        assert summary.json() == {"pools": [{"name": "e2ehost@file-1#file-1"}]}

        detail = client.get(f"{url}?detail=True", headers=admin)
        assert detail.status_code == 200
        [pool] = detail.json()["pools"]
        theirs = golden("pools-detail")["body"]["pools"][0]["capabilities"]
        ours = pool["capabilities"]
        assert pool["name"] == "e2ehost@file-1#file-1"
        assert set(theirs) <= set(ours), set(theirs) - set(ours)
        same_kind = {k: ours[k] for k in theirs if theirs[k] != "infinite"}
        assert shape_differences(same_kind, {k: theirs[k] for k in same_kind}) == []
        assert ours["total_capacity_gb"] == 100 and ours["volume_backend_name"] == "file-1"

        bad = client.get(f"{url}?detail=maybe", headers=admin)
        assert bad.status_code == 400
        assert bad.json() == {
            "badRequest": {"code": 400, "message": "Value 'maybe' for 'detail' is not a boolean."}
        }
        named = client.get(
            f"{url}?name=other", headers=headers(project, user="admin", version="3.28")
        )
        assert named.json() == {"pools": []}


def test_private_type_is_not_usable_by_non_admins(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    types_url = f"{cluster.rest_url}/v3/{project}/types"
    volumes_url = f"{cluster.rest_url}/v3/{project}/volumes"
    name = _unique("private")
    body = {"volume_type": {"name": name, "os-volume-type-access:is_public": False}}
    with httpx.Client() as client:
        created = client.post(types_url, headers=admin, json=body)
        assert created.status_code == 200, created.text
        type_id = created.json()["volume_type"]["id"]
        for reference, message in [
            (name, f"Volume type with name {name} could not be found."),
            (type_id, f"Volume type {type_id} could not be found."),
        ]:
            refused = client.post(
                volumes_url, headers=user, json={"volume": {"size": 1, "volume_type": reference}}
            )
            assert refused.status_code == 404
            assert refused.json() == {"itemNotFound": {"code": 404, "message": message}}
        made = client.post(
            volumes_url, headers=admin, json={"volume": {"size": 1, "volume_type": name}}
        )
        assert made.status_code == 202, made.text
        volume_url = f"{volumes_url}/{made.json()['volume']['id']}"
        wait_for_status(client, volume_url, admin, "available")
        assert client.delete(volume_url, headers=admin).status_code == 202
        wait_for_404(client, volume_url, admin)
        assert client.delete(f"{types_url}/{type_id}", headers=admin).status_code == 202
