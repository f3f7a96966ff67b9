"""Quota classes through the real gateway, as Tempest's test_volume_quota_classes.py and its
schemas check them (tempest/lib/api_schema/response/volume/quota_classes.py): the `default`
class backs every project's defaults, other classes fall back to it; Cinder's messages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import postgres
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers

#: Tempest's required keys (show also `id`); per-type keys may follow (integers).
REQUIRED = {"volumes", "snapshots", "backups", "per_volume_gigabytes", "gigabytes",
            "backup_gigabytes"}  # fmt: skip
ADMIN_PROJECT = "adm1n000000000000000000000000001"


class Classes:
    def __init__(self, cluster: Cluster, project: str) -> None:
        self.cluster = cluster
        self.project = project
        self.client = httpx.Client()

    def call(self, method: str, path: str, admin: bool = True, **kwargs: Any) -> httpx.Response:
        project = ADMIN_PROJECT if admin else self.project
        hdrs = headers(project, user="admin" if admin else "u1")
        url = f"{self.cluster.rest_url}/v3/{project}{path}"
        return self.client.request(method, url, headers=hdrs, **kwargs)

    def put(self, name: str, quota_class_set: Any) -> httpx.Response:
        body = {"quota_class_set": quota_class_set}
        return self.call("PUT", f"/os-quota-class-sets/{name}", json=body)


@pytest.fixture()
def classes(cluster: Cluster, project: str) -> Iterator[Classes]:
    calls = Classes(cluster, project)
    yield calls
    calls.client.close()
    # Cinder has no delete of a quota class: the rows go, so that other tests see the
    # configured defaults again.
    postgres.execute(cluster.database_url, "delete from quota_classes")


def _schema_keys(body: dict[str, Any], with_id: bool) -> None:
    assert set(body) == {"quota_class_set"}
    quota_class_set = body["quota_class_set"]
    assert REQUIRED | ({"id"} if with_id else set()) <= set(quota_class_set)
    assert ("id" in quota_class_set) is with_id
    for key, value in quota_class_set.items():
        if key != "id":
            assert type(value) is int, key


def test_show_default_class(classes: Classes) -> None:
    response = classes.call("GET", "/os-quota-class-sets/default")
    assert response.status_code == 200
    _schema_keys(response.json(), with_id=True)
    shown = response.json()["quota_class_set"]
    assert shown["id"] == "default"
    # The cluster's configuration (volumes = 50) and Cinder's built-in defaults.
    assert (shown["volumes"], shown["gigabytes"], shown["snapshots"], shown["groups"]) == (
        50, 1000, 10, 10,
    )  # fmt: skip
    assert shown["volumes___DEFAULT__"] == -1


def test_update_default_class_changes_every_projects_defaults(
    classes: Classes, cluster: Cluster
) -> None:
    body = classes.call("GET", "/os-quota-class-sets/default").json()["quota_class_set"]
    update = {key: body[key] + 1 for key in REQUIRED if body[key] >= 0}
    type_name = f"qc-{uuid.uuid4().hex[:8]}"
    created = classes.call("POST", "/types", json={"volume_type": {"name": type_name}})
    assert created.status_code == 200
    try:
        update |= {f"{part}_{type_name}": 3 for part in ("volumes", "snapshots", "gigabytes")}
        response = classes.put("default", update)
        assert response.status_code == 200, response.text
        _schema_keys(response.json(), with_id=False)
        assert update.items() <= response.json()["quota_class_set"].items()
        rows = db_rows(cluster, "select resource from quota_classes where class_name = 'default'")
        assert {row[0] for row in rows} == set(update)

        for project in (ADMIN_PROJECT, uuid.uuid4().hex):
            url = f"/os-quota-sets/{project}/defaults"
            defaults = classes.call("GET", url).json()["quota_set"]
            assert update.items() <= defaults.items()
        # A project's own limits still win; its other limits come from the class.
        project = uuid.uuid4().hex
        own = classes.call(
            "PUT", f"/os-quota-sets/{project}", json={"quota_set": {"volumes": 7}}
        ).json()["quota_set"]
        assert own["volumes"] == 7 and own["gigabytes"] == update["gigabytes"]
        limits = classes.call("GET", "/limits", admin=False).json()["limits"]["absolute"]
        assert limits["maxTotalVolumes"] == update["volumes"]
    finally:
        classes.call("DELETE", f"/types/{created.json()['volume_type']['id']}")


def test_other_class_falls_back_to_default(classes: Classes) -> None:
    assert classes.put("default", {"snapshots": 33}).status_code == 200
    response = classes.put("gold", {"volumes": "12", "gigabytes": -1})
    assert response.status_code == 200, response.text
    updated = response.json()["quota_class_set"]
    assert (updated["volumes"], updated["gigabytes"], updated["snapshots"]) == (12, -1, 33)
    shown = classes.call("GET", "/os-quota-class-sets/gold").json()["quota_class_set"]
    assert shown == {**updated, "id": "gold"}
    # An empty update answers the class.
    assert classes.put("gold", {}).json()["quota_class_set"] == updated


def _error(response: httpx.Response, status: int) -> str:
    key = {400: "badRequest", 403: "forbidden"}[status]
    assert response.status_code == status, response.text
    assert response.json()[key]["code"] == status
    message: str = response.json()[key]["message"]
    return message


@pytest.mark.parametrize(
    ("quota_class_set", "message"),
    [
        ({"volumes": 1, "bogus": 1, "x": 2}, "Invalid input received: Bad key(s) in quota class "
         "set: bogus, x"),
        ({"volumes": -2}, "Invalid input for field/attribute volumes. Value: -2. -2 is less than "
         "the minimum of -1"),
        ({"volumes": "-1"}, "Invalid input for field/attribute volumes. Value: -1. '-1' does not "
         "match '^[0-9]*$'"),
        ({"volumes": "abc"}, "Invalid input for field/attribute volumes. Value: abc. 'abc' does "
         "not match '^[0-9]*$'"),
        ({"volumes": ""}, "Invalid input for field/attribute volumes. Value: . '' should be "
         "non-empty"),
        ({"volumes": True}, "Invalid input for field/attribute volumes. Value: True. True is not "
         "of type 'integer', 'string'"),
        ({"volumes": 2147483648}, "Invalid input for field/attribute volumes. Value: 2147483648. "
         "2147483648 is greater than the maximum of 2147483647"),
        ("x", "Invalid input for field/attribute quota_class_set. Value: x. 'x' is not of type "
         "'object'"),
    ],
)  # fmt: skip
def test_update_validation(classes: Classes, quota_class_set: Any, message: str) -> None:
    assert _error(classes.put("default", quota_class_set), 400) == message


def test_update_checks(classes: Classes) -> None:
    response = classes.call("PUT", "/os-quota-class-sets/default", json={})
    assert _error(response, 400) == "'quota_class_set' is a required property"
    long_name = "c" * 256
    assert _error(classes.put(long_name, {"volumes": 1}), 400) == (
        "Invalid input received: quota_class_name has 256 characters, more than 255."
    )


def test_non_admins_may_not_read_nor_update(classes: Classes) -> None:
    shown = classes.call("GET", "/os-quota-class-sets/default", admin=False)
    assert _error(shown, 403) == (
        "Policy doesn't allow volume_extension:quota_classes:get to be performed."
    )
    body = {"quota_class_set": {"volumes": 1}}
    updated = classes.call("PUT", "/os-quota-class-sets/default", admin=False, json=body)
    assert _error(updated, 403) == (
        "Policy doesn't allow volume_extension:quota_classes:update to be performed."
    )


def test_volume_create_obeys_the_default_class(classes: Classes, cluster: Cluster) -> None:
    """A project with no limits of its own reserves against the `default` class's (the one
    precedence of cindermesh.db.quota.limits_for): Cinder's 413 on the second create."""
    assert classes.put("default", {"volumes": 1}).status_code == 200
    hdrs = headers(classes.project)
    url = f"{cluster.rest_url}/v3/{classes.project}/volumes"
    first = classes.client.post(url, headers=hdrs, json={"volume": {"size": 1}})
    assert first.status_code == 202, first.text
    second = classes.client.post(url, headers=hdrs, json={"volume": {"size": 1}})
    assert second.status_code == 413, second.text
    fault = second.json()["overLimit"]
    assert (fault["code"], fault["message"]) == (
        413,
        "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'.",
    )
    limits = classes.call("GET", f"/os-quota-sets/{classes.project}").json()["quota_set"]
    assert limits["volumes"] == 1
