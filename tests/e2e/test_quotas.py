"""Quota sets and limits through the real gateway: Cinder's shapes (golden files), usage that
moves with real volumes, admin-only updates that volume create obeys (413 overLimit), and each
validation error with Cinder's message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.golden import assert_cinder_headers, assert_shape, golden
from tests.e2e.helpers import db_rows, headers, wait_for_404, wait_for_status

FIXED = {
    "volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
    "per_volume_gigabytes", "groups",
}  # fmt: skip
ADMIN_PROJECT = "adm1n000000000000000000000000001"


class Quotas:
    """REST calls on one project's quotas: as its own user (`u1`) or as the admin."""

    def __init__(self, cluster: Cluster, project: str) -> None:
        self.cluster = cluster
        self.project = project
        self.client = httpx.Client()
        self.created: list[str] = []

    def own(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.cluster.rest_url}/v3/{self.project}{path}"
        return self.client.request(method, url, headers=headers(self.project), **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.cluster.rest_url}/v3/{ADMIN_PROJECT}{path}"
        hdrs = headers(ADMIN_PROJECT, user="admin")
        return self.client.request(method, url, headers=hdrs, **kwargs)

    def put(self, quota_set: dict[str, Any]) -> httpx.Response:
        return self.admin("PUT", f"/os-quota-sets/{self.project}", json={"quota_set": quota_set})

    def quota_set(self, query: str = "") -> dict[str, Any]:
        response = self.own("GET", f"/os-quota-sets/{self.project}{query}")
        assert response.status_code == 200, response.text
        shown: dict[str, Any] = response.json()["quota_set"]
        return shown

    def create(self, size: int = 1) -> httpx.Response:
        response = self.own("POST", "/volumes", json={"volume": {"size": size}})
        if response.status_code == 202:
            volume_id = response.json()["volume"]["id"]
            self.created.append(volume_id)
            url = f"{self.cluster.rest_url}/v3/{self.project}/volumes/{volume_id}"
            wait_for_status(self.client, url, headers(self.project), "available")
        return response

    def delete_created(self) -> None:
        for volume_id in self.created:
            url = f"{self.cluster.rest_url}/v3/{self.project}/volumes/{volume_id}"
            self.client.delete(url, headers=headers(self.project))
            assert wait_for_404(self.client, url, headers(self.project)).status_code == 404
        self.created.clear()


@pytest.fixture()
def quotas(cluster: Cluster, project: str) -> Iterator[Quotas]:
    calls = Quotas(cluster, project)
    yield calls
    calls.delete_created()
    calls.client.close()


def _expected_keys(cluster: Cluster) -> set[str]:
    types = [row[0] for row in db_rows(cluster, "select name from volume_types")]
    return FIXED | {f"{part}_{t}" for t in types for part in ("volumes", "gigabytes", "snapshots")}


def _golden_view(quota_set: dict[str, Any]) -> dict[str, Any]:
    """Only the keys the golden deployment has (other helpers' tests may add volume types)."""
    return {k: v for k, v in quota_set.items() if k in FIXED or k == "id" or "___DEFAULT__" in k}


def _fault(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    key = {400: "badRequest", 403: "forbidden", 413: "overLimit"}[status]
    fault = response.json()[key]
    assert fault["code"] == status
    message: str = fault["message"]
    return message


def test_show_defaults_and_limits_match_cinder(quotas: Quotas, cluster: Cluster) -> None:
    expected = _expected_keys(cluster)
    response = quotas.own("GET", f"/os-quota-sets/{quotas.project}")
    assert response.status_code == 200
    assert_cinder_headers(response.headers, "quota-show")
    shown = response.json()["quota_set"]
    assert set(shown) == expected | {"id"}
    assert_shape({"quota_set": _golden_view(shown)}, "quota-show")
    assert shown["id"] == quotas.project
    assert re.search(r'"volumes":50[,}]', response.text)  # an integer, not 50.0
    # The cluster's configuration (volumes = 50), Cinder's built-in defaults, -1 per type.
    assert (shown["volumes"], shown["gigabytes"], shown["snapshots"]) == (50, 1000, 10)
    assert (shown["per_volume_gigabytes"], shown["volumes___DEFAULT__"]) == (-1, -1)

    with_usage = quotas.quota_set("?usage=True")
    assert set(with_usage) == expected | {"id"}
    assert_shape({"quota_set": _golden_view(with_usage)}, "quota-show-usage")
    assert with_usage["volumes"] == {"limit": 50, "in_use": 0, "reserved": 0}

    defaults = quotas.own("GET", f"/os-quota-sets/{quotas.project}/defaults")
    assert defaults.status_code == 200
    assert set(defaults.json()["quota_set"]) == expected | {"id"}
    assert_shape({"quota_set": _golden_view(defaults.json()["quota_set"])}, "quota-defaults")

    limits = quotas.own("GET", "/limits")
    assert limits.status_code == 200
    assert_cinder_headers(limits.headers, "limits")
    assert_shape(limits.json(), "limits")
    assert limits.json()["limits"]["absolute"]["maxTotalVolumes"] == 50


def test_url_without_project_uses_the_tokens(quotas: Quotas, cluster: Cluster) -> None:
    hdrs = headers(quotas.project)
    with httpx.Client() as client:
        shown = client.get(f"{cluster.rest_url}/v3/os-quota-sets/{quotas.project}", headers=hdrs)
        limits = client.get(f"{cluster.rest_url}/v3/limits", headers=hdrs)
    assert shown.status_code == 200 and shown.json()["quota_set"]["id"] == quotas.project
    assert limits.status_code == 200 and limits.json()["limits"]["rate"] == []


def test_usage_moves_with_a_real_volume(quotas: Quotas) -> None:
    assert quotas.create(size=2).status_code == 202
    shown = quotas.quota_set("?usage=1")
    for key, in_use in [
        ("volumes", 1), ("gigabytes", 2), ("volumes___DEFAULT__", 1),
        ("gigabytes___DEFAULT__", 2), ("snapshots", 0),
    ]:  # fmt: skip
        assert shown[key]["in_use"] == in_use, key
        assert shown[key]["reserved"] == 0, key
    absolute = quotas.own("GET", "/limits").json()["limits"]["absolute"]
    assert (absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"]) == (1, 2)

    quotas.delete_created()
    shown = quotas.quota_set("?usage=True")
    assert shown["volumes"]["in_use"] == 0 and shown["gigabytes___DEFAULT__"]["in_use"] == 0
    absolute = quotas.own("GET", "/limits").json()["limits"]["absolute"]
    assert (absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"]) == (0, 0)


def test_update_then_create_is_refused_with_cinders_413(quotas: Quotas, cluster: Cluster) -> None:
    updated = quotas.put({"volumes": 1})
    assert updated.status_code == 200, updated.text
    assert_cinder_headers(updated.headers, "quota-update")
    body = updated.json()["quota_set"]
    assert "id" not in body and set(body) == _expected_keys(cluster)
    assert_shape({"quota_set": _golden_view(body)}, "quota-update")
    assert body["volumes"] == 1 and body["gigabytes"] == 1000
    assert quotas.quota_set()["volumes"] == 1
    assert quotas.own("GET", "/limits").json()["limits"]["absolute"]["maxTotalVolumes"] == 1
    assert db_rows(
        cluster, "select resource, hard_limit from quotas where project_id = ?", quotas.project
    ) == [("volumes", 1)]

    first = quotas.create()
    assert first.status_code == 202, first.text
    refused = quotas.create()
    assert refused.status_code == 413
    assert refused.json() == golden("err-quota-volumes")["body"]
    assert_cinder_headers(refused.headers, "err-quota-volumes")
    # Nothing left behind: one volume row, no reservation, usage of the first volume only.
    rows = db_rows(cluster, "select id from volumes where project_id = ?", quotas.project)
    assert rows == [(first.json()["volume"]["id"],)]
    reservations = "select id from reservations where project_id = ?"
    assert db_rows(cluster, reservations, quotas.project) == []
    usage = quotas.quota_set("?usage=True")["volumes"]
    assert usage == {"limit": 1, "in_use": 1, "reserved": 0}


def test_per_type_quota_names_the_type(quotas: Quotas) -> None:
    assert quotas.put({"volumes___DEFAULT__": 0}).status_code == 200
    message = _fault(quotas.create(), 413)
    assert message == (
        "VolumeLimitExceeded: Maximum number of volumes allowed (0) exceeded for quota "
        "'volumes___DEFAULT__'."
    )


def test_when_several_are_over_gigabytes_decides(quotas: Quotas, cluster: Cluster) -> None:
    assert quotas.put({"volumes": 0, "gigabytes": 1}).status_code == 200
    response = quotas.create(size=2)
    assert response.json()["overLimit"]["retryAfter"] == "0"
    assert _fault(response, 413) == (
        "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
        "gigabytes quota. Requested 2G, quota is 1G and 0G has been consumed."
    )
    assert db_rows(cluster, "select id from volumes where project_id = ?", quotas.project) == []


def test_per_volume_gigabytes(quotas: Quotas) -> None:
    assert quotas.put({"per_volume_gigabytes": 1}).status_code == 200
    assert _fault(quotas.create(size=2), 413) == (
        "VolumeSizeExceedsLimit: Requested volume size 2G is larger than maximum allowed limit 1G."
    )


def test_delete_goes_back_to_defaults(quotas: Quotas, cluster: Cluster) -> None:
    assert quotas.put({"volumes": 3, "snapshots": 2}).status_code == 200
    forbidden = quotas.own("DELETE", f"/os-quota-sets/{quotas.project}")
    assert _fault(forbidden, 403) == (
        "Policy doesn't allow volume_extension:quotas:delete to be performed."
    )
    deleted = quotas.admin("DELETE", f"/os-quota-sets/{quotas.project}")
    assert deleted.status_code == 200
    assert deleted.content == b""
    shown = quotas.quota_set()
    assert (shown["volumes"], shown["snapshots"]) == (50, 10)
    quota_rows = "select * from quotas where project_id = ?"
    assert db_rows(cluster, quota_rows, quotas.project) == []


def test_non_admins_may_not_update_nor_read_other_projects(
    quotas: Quotas, cluster: Cluster
) -> None:
    response = quotas.own(
        "PUT", f"/os-quota-sets/{quotas.project}", json={"quota_set": {"volumes": 1}}
    )
    assert _fault(response, 403) == (
        "Policy doesn't allow volume_extension:quotas:update to be performed."
    )
    quota_rows = "select * from quotas where project_id = ?"
    assert db_rows(cluster, quota_rows, quotas.project) == []
    other = "0ther000000000000000000000000001"
    for path in (f"/os-quota-sets/{other}", f"/os-quota-sets/{other}/defaults"):
        assert _fault(quotas.own("GET", path), 403) == (
            "Policy doesn't allow volume_extension:quotas:show to be performed."
        )
    # An admin reads any project.
    shown = quotas.admin("GET", f"/os-quota-sets/{quotas.project}?usage=True")
    assert shown.status_code == 200 and shown.json()["quota_set"]["id"] == quotas.project


BAD_BODIES = [
    ({}, "'quota_set' is a required property"),
    ({"quota_set": {}}, "Invalid input for field/attribute quota_set. Value: {}. {} should be non-empty"),
    ({"quota_set": "x"}, "Invalid input for field/attribute quota_set. Value: x. 'x' is not of type 'object'"),
    ({"quota_set": {"foo": 1}}, "Invalid input received: Bad key(s) in quota set: foo"),
    ({"quota_set": {"volumes_nosuchtype": 1}}, "Invalid input received: Bad key(s) in quota set: volumes_nosuchtype"),
    ({"quota_set": {"volumes": "x"}}, "volumes must be an integer"),
    ({"quota_set": {"volumes": 1.5}}, "volumes must be an integer"),
    ({"quota_set": {"gigabytes": -2}}, "gigabytes must be >= -1"),
    ({"quota_set": {"volumes": 2147483648}}, "volumes must be <= 2147483647"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_update_validation(
    quotas: Quotas, cluster: Cluster, body: dict[str, Any], message: str
) -> None:
    response = quotas.admin("PUT", f"/os-quota-sets/{quotas.project}", json=body)
    assert _fault(response, 400) == message
    assert db_rows(cluster, "select * from quotas where project_id = ?", quotas.project) == []


def test_update_without_body_is_a_clean_400(quotas: Quotas) -> None:
    response = quotas.admin("PUT", f"/os-quota-sets/{quotas.project}")
    assert _fault(response, 400) == "'quota_set' is a required property"


def test_limit_below_usage_is_refused(quotas: Quotas) -> None:
    assert quotas.create().status_code == 202
    assert _fault(quotas.put({"volumes": 0}), 400) == (
        "Quota volumes limit must be equal or greater than existing resources. "
        "Current usage is 1 and the requested limit is 0."
    )
    assert quotas.put({"volumes": 1}).status_code == 200


def test_usage_flag_must_be_a_boolean(quotas: Quotas) -> None:
    response = quotas.own("GET", f"/os-quota-sets/{quotas.project}?usage=x")
    assert _fault(response, 400) == "Value 'x' for 'usage' is not a boolean."
