"""Generic groups through the real gateway, as Tempest's admin test_group* use them: group
types with group specs (3.11), groups with volumes (3.13: create, show, lists, update adding
and removing volumes, delete with its volumes, 3.20 reset status), group snapshots (3.14:
one snapshot per volume, delete, 3.19 reset status), and groups created from a group or a
group snapshot; the `groups` quota, Cinder's refusals."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers

ADMIN_PROJECT = "adm1n000000000000000000000000001"
VERSION = "3.20"


class Api:
    """REST calls as the admin or as one project's user."""

    def __init__(self, cluster: Cluster, client: httpx.Client) -> None:
        self.cluster = cluster
        self.client = client
        self.project = uuid.uuid4().hex

    def call(
        self, method: str, path: str, admin: bool = False, version: str = VERSION, **kw: Any
    ) -> httpx.Response:
        project = ADMIN_PROJECT if admin else self.project
        hdrs = headers(project, user="admin" if admin else "u1", version=version)
        return self.client.request(
            method, f"{self.cluster.rest_url}/v3/{project}{path}", headers=hdrs, **kw
        )

    def ok(self, method: str, path: str, status: int, **kw: Any) -> Any:
        response = self.call(method, path, **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def wait(self, path: str, key: str, wanted: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self.call("GET", path)
            if response.status_code == 200 and response.json()[key]["status"] == wanted:
                found: dict[str, Any] = response.json()[key]
                return found
            assert time.monotonic() < deadline, f"{path} never {wanted}: {response.text}"
            time.sleep(0.05)

    def gone(self, path: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.call("GET", path).status_code != 404:
            assert time.monotonic() < deadline, f"{path} still there"
            time.sleep(0.05)

    def volume_type(self) -> str:
        body = {"volume_type": {"name": f"vt-{uuid.uuid4().hex[:8]}"}}
        type_id: str = self.ok("POST", "/types", 200, admin=True, json=body)["volume_type"]["id"]
        return type_id

    def group_type(self, **fields: Any) -> dict[str, Any]:
        body = {"group_type": {"name": f"gt-{uuid.uuid4().hex[:8]}", **fields}}
        found: dict[str, Any] = self.ok("POST", "/group_types", 202, admin=True, json=body)[
            "group_type"
        ]
        return found

    def group(self, group_type: str, volume_types: list[str], **fields: Any) -> str:
        body = {"group": {"group_type": group_type, "volume_types": volume_types, **fields}}
        created = self.ok("POST", "/groups", 202, json=body)["group"]
        assert set(created) == {"id", "name"}
        self.wait(f"/groups/{created['id']}", "group", "available")
        group_id: str = created["id"]
        return group_id

    def volume(self, volume_type: str, group_id: str | None = None) -> str:
        body = {"volume": {"size": 1, "volume_type": volume_type, "group_id": group_id}}
        created = self.ok("POST", "/volumes", 202, json=body)["volume"]
        assert created["group_id"] == group_id
        self.wait(f"/volumes/{created['id']}", "volume", "available")
        volume_id: str = created["id"]
        return volume_id

    def delete_group(self, group_id: str, delete_volumes: bool = True) -> None:
        """Deletes the group and waits for it, and (with ``delete_volumes``) for its volumes:
        each volume's delete, and the quota it gives back, finishes on its own."""
        members = [
            v["id"]
            for v in self.ok("GET", "/volumes/detail", 200)["volumes"]
            if v["group_id"] == group_id
        ]
        body = {"delete": {"delete-volumes": delete_volumes}}
        self.ok("POST", f"/groups/{group_id}/action", 202, json=body)
        self.gone(f"/groups/{group_id}")
        for volume_id in members if delete_volumes else ():
            self.gone(f"/volumes/{volume_id}")

    def usage(self, name: str) -> int:
        path = f"/os-quota-sets/{self.project}?usage=True"
        in_use: int = self.ok("GET", path, 200, admin=True)["quota_set"][name]["in_use"]
        return in_use


@pytest.fixture()
def api(cluster: Cluster) -> Iterator[Api]:
    with httpx.Client() as client:
        yield Api(cluster, client)


def _fault(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    (body,) = response.json().values()
    message: str = body["message"]
    return message


def test_group_types_and_specs(api: Api) -> None:
    created = api.group_type(description="d", group_specs={"a": "1"}, is_public=True)
    assert set(created) == {"id", "name", "description", "is_public", "group_specs"}
    assert created["group_specs"] == {"a": "1"}
    type_id = created["id"]
    path = f"/group_types/{type_id}"
    # Users see public types, without their specs; before 3.11 there are none.
    shown = api.ok("GET", path, 200)["group_type"]
    assert shown["name"] == created["name"] and "group_specs" not in shown
    assert api.call("GET", path, version="3.10").status_code == 404
    updated = api.ok("PUT", path, 200, admin=True, json={"group_type": {"description": "e"}})
    assert updated["group_type"]["description"] == "e"
    specs = api.ok("POST", f"{path}/group_specs", 202, admin=True, json={"group_specs": {"b": "2"}})
    assert specs == {"group_specs": {"b": "2"}}
    listed = api.ok("GET", f"{path}/group_specs", 200, admin=True)
    assert listed == {"group_specs": {"a": "1", "b": "2"}}
    item = api.ok("PUT", f"{path}/group_specs/b", 200, admin=True, json={"b": "3"})
    assert item == {"b": "3"}
    assert api.ok("GET", f"{path}/group_specs/b", 200, admin=True) == {"b": "3"}
    mismatch = api.call("PUT", f"{path}/group_specs/b", admin=True, json={"c": "3"})
    assert _fault(mismatch, 400) == "Request body and URI mismatch"
    assert api.call("DELETE", f"{path}/group_specs/b", admin=True).status_code == 202
    missing = api.call("GET", f"{path}/group_specs/b", admin=True)
    assert _fault(missing, 404) == f"Group Type {type_id} has no extra spec with key b."
    # Users may not manage them.
    refused = api.call("POST", "/group_types", json={"group_type": {"name": "x"}})
    assert _fault(refused, 403) == "Policy doesn't allow group:group_types:create to be performed."
    duplicate = api.call(
        "POST", "/group_types", admin=True, json={"group_type": {"name": created["name"]}}
    )
    assert _fault(duplicate, 409) == f"Group Type {created['name']} already exists."
    assert api.call("DELETE", path, admin=True).status_code == 202
    assert _fault(api.call("GET", path), 404) == f"Group type {type_id} could not be found."


def test_group_type_list_sorts_and_filters_public(api: Api) -> None:
    tag = uuid.uuid4().hex[:6]
    public = api.group_type(name=f"a_{tag}", is_public=True)
    private = api.group_type(name=f"b_{tag}", is_public=False)

    def names(query: str, admin: bool = True) -> list[str]:
        listed = api.ok("GET", f"/group_types{query}", 200, admin=admin)["group_types"]
        return [t["name"] for t in listed if t["name"].endswith(tag)]

    assert names("?sort=name:asc&is_public=None") == [public["name"], private["name"]]
    assert names("?sort=name:desc&is_public=None") == [private["name"], public["name"]]
    assert names("?is_public=false") == [private["name"]]
    assert names("?is_public=true") == [public["name"]]
    assert names("?is_public=None", admin=False) == [public["name"]]
    for found in (public, private):
        api.call("DELETE", f"/group_types/{found['id']}", admin=True)


def test_group_lifecycle_with_volumes(api: Api, cluster: Cluster) -> None:
    volume_type = api.volume_type()
    group_type = api.group_type()["id"]
    group_id = api.group(group_type, [volume_type], name="g1", description="first")
    assert api.usage("groups") == 1
    shown = api.ok("GET", f"/groups/{group_id}", 200)["group"]
    assert set(shown) == {
        "id", "name", "status", "availability_zone", "created_at", "description", "group_type",
        "volume_types", "group_snapshot_id", "source_group_id",
    }  # fmt: skip
    assert (shown["name"], shown["volume_types"], shown["group_type"]) == (
        "g1", [volume_type], group_type,
    )  # fmt: skip
    assert set(api.ok("GET", f"/groups/{group_id}", 200, version="3.13")["group"]) == {
        "id", "name", "status", "availability_zone", "created_at", "description", "group_type",
        "volume_types",
    }  # fmt: skip
    first = api.volume(volume_type, group_id)
    second = api.volume(volume_type, group_id)
    other_type = api.volume_type()
    wrong = api.call(
        "POST",
        "/volumes",
        json={"volume": {"size": 1, "volume_type": other_type, "group_id": group_id}},
    )
    assert "requested type must be supported by this group" in _fault(wrong, 400)
    # A volume of a group is not deleted alone.
    assert api.call("DELETE", f"/volumes/{first}").status_code == 400

    listed = api.ok("GET", "/groups", 200)["groups"]
    assert listed == [{"id": group_id, "name": "g1"}]
    detail = api.ok("GET", "/groups/detail", 200)["groups"]
    assert [g["volume_types"] for g in detail] == [[volume_type]]
    with_volumes = api.ok("GET", f"/groups/{group_id}?list_volume=True", 200, version="3.25")
    assert sorted(with_volumes["group"]["volumes"]) == sorted([first, second])

    # Update: rename and take one out, then put it back.
    body = {"group": {"name": "new", "description": "d2", "remove_volumes": second}}
    assert api.call("PUT", f"/groups/{group_id}", json=body).status_code == 202
    grp = api.wait(f"/groups/{group_id}", "group", "available")
    assert (grp["name"], grp["description"]) == ("new", "d2")
    assert api.ok("GET", f"/volumes/{second}", 200)["volume"]["group_id"] is None
    body = {"group": {"add_volumes": second}}
    assert api.call("PUT", f"/groups/{group_id}", json=body).status_code == 202
    assert api.ok("GET", f"/volumes/{second}", 200)["volume"]["group_id"] == group_id
    again = api.call("PUT", f"/groups/{group_id}", json={"group": {"name": "new"}})
    assert _fault(again, 400) == (
        f"Invalid Group: Cannot update group {group_id} because no valid name, description, "
        "add_volumes, or remove_volumes were provided."
    )

    # Delete: refused without delete-volumes, then the group and its volumes go.
    kept = api.call("POST", f"/groups/{group_id}/action", json={"delete": {}})
    assert _fault(kept, 400) == (
        f"Invalid Group: Group {group_id} still contains volumes. The delete-volumes flag is "
        "required to delete it."
    )
    api.delete_group(group_id)
    for volume_id in (first, second):
        api.gone(f"/volumes/{volume_id}")
    assert api.usage("groups") == 0 and api.usage("volumes") == 0
    assert db_rows(
        cluster, "select count(*) from group_volume_type_mapping where group_id = ?", group_id
    ) == [(0,)]


def test_reset_status_and_quota(api: Api) -> None:
    volume_type = api.volume_type()
    group_type = api.group_type()["id"]
    group_id = api.group(group_type, [volume_type])
    for status in ("creating", "available", "error"):
        body = {"reset_status": {"status": status}}
        assert (
            api.call("POST", f"/groups/{group_id}/action", admin=True, json=body).status_code == 202
        )
        assert api.ok("GET", f"/groups/{group_id}", 200)["group"]["status"] == status
    refused = api.call(
        "POST", f"/groups/{group_id}/action", json={"reset_status": {"status": "error"}}
    )
    assert _fault(refused, 403) == "Policy doesn't allow group:reset_status to be performed."
    early = api.call("POST", f"/groups/{group_id}/action", admin=True, version="3.19",
                     json={"reset_status": {"status": "error"}})  # fmt: skip
    assert early.status_code == 404
    api.delete_group(group_id, delete_volumes=False)
    put = api.call(
        "PUT", f"/os-quota-sets/{api.project}", admin=True, json={"quota_set": {"groups": 0}}
    )
    assert put.status_code == 200, put.text
    body = {"group": {"group_type": group_type, "volume_types": [volume_type]}}
    over = api.call("POST", "/groups", json=body)
    assert _fault(over, 413) == "Maximum number of groups allowed (0) exceeded"
    assert api.usage("groups") == 0


def test_group_snapshots_and_groups_from_sources(api: Api) -> None:
    volume_type = api.volume_type()
    group_type = api.group_type()["id"]
    group_id = api.group(group_type, [volume_type])
    volumes = [api.volume(volume_type, group_id) for _ in range(2)]
    body = {"group_snapshot": {"group_id": group_id, "name": "gs"}}
    created = api.ok("POST", "/group_snapshots", 202, json=body)["group_snapshot"]
    assert set(created) == {"id", "name", "group_type_id"}
    gs_path = f"/group_snapshots/{created['id']}"
    shown = api.wait(gs_path, "group_snapshot", "available")
    assert (shown["group_id"], shown["name"]) == (group_id, "gs")
    snapshots = [
        s for s in api.ok("GET", "/snapshots/detail", 200)["snapshots"] if s["volume_id"] in volumes
    ]
    assert len(snapshots) == 2 and {s["status"] for s in snapshots} == {"available"}
    assert api.usage("snapshots") == 2
    summaries = api.ok("GET", "/group_snapshots", 200)["group_snapshots"]
    assert summaries == [{"id": created["id"], "name": "gs"}]
    # A group with snapshots is not deleted.
    refused = api.call(
        "POST", f"/groups/{group_id}/action", json={"delete": {"delete-volumes": True}}
    )
    assert _fault(refused, 400) == "Invalid Group: Group has existing snapshots."

    # From the group snapshot and from the group: a volume of the new group per source.
    for source in ({"group_snapshot_id": created["id"]}, {"source_group_id": group_id}):
        body = {"create-from-src": {"name": "copy", **source}}
        new = api.ok("POST", "/groups/action", 202, json=body)["group"]
        grp = api.wait(f"/groups/{new['id']}", "group", "available")
        assert grp["name"] == "copy"
        members = [
            v
            for v in api.ok("GET", "/volumes/detail", 200)["volumes"]
            if v["group_id"] == new["id"]
        ]
        assert len(members) == 2
        for member in members:
            api.wait(f"/volumes/{member['id']}", "volume", "available")
        api.delete_group(new["id"])

    # Reset status, then delete: the snapshots go with it.
    body = {"reset_status": {"status": "error"}}
    assert api.call("POST", f"{gs_path}/action", admin=True, json=body).status_code == 202
    assert api.ok("GET", gs_path, 200)["group_snapshot"]["status"] == "error"
    assert api.call("DELETE", gs_path).status_code == 202
    api.gone(gs_path)
    for snapshot in snapshots:
        api.gone(f"/snapshots/{snapshot['id']}")
    assert api.usage("snapshots") == 0
    api.delete_group(group_id)
    assert api.usage("volumes") == 0 and api.usage("groups") == 0


CHECKS: list[tuple[str, Callable[[Api], httpx.Response], str]] = [
    (
        "group without volume_types",
        lambda api: api.call("POST", "/groups", json={"group": {"group_type": "x"}}),
        "Invalid input for field/attribute group. Value: {'group_type': 'x'}. 'volume_types' is "
        "a required property",
    ),
    (
        "unknown group type",
        lambda api: api.call(
            "POST", "/groups", json={"group": {"group_type": "nope", "volume_types": ["a"]}}
        ),
        "Group type nope could not be found.",
    ),
    (
        "group snapshot of no uuid",
        lambda api: api.call(
            "POST", "/group_snapshots", json={"group_snapshot": {"group_id": "x"}}
        ),
        "Invalid input for field/attribute group_id. Value: x. 'x' is not a 'uuid'",
    ),
    (
        "unknown group",
        lambda api: api.call("GET", "/groups/4b111d28-b73d-4908-9bd2-03dc2992e4d4"),
        "Group 4b111d28-b73d-4908-9bd2-03dc2992e4d4 could not be found.",
    ),
]


@pytest.mark.parametrize(("name", "call", "message"), CHECKS, ids=[c[0] for c in CHECKS])
def test_refusals(api: Api, name: str, call: Callable[[Api], httpx.Response], message: str) -> None:
    response = call(api)
    assert response.status_code in (400, 404), response.text
    assert _fault(response, response.status_code) == message
