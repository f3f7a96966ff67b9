"""QoS specs through the real gateway, as Tempest's test_qos.py and its response schemas check
them (tempest/lib/api_schema/response/volume/qos.py): statuses, body keys, links, consumers,
associations with volume types, Cinder's messages and refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers

#: Tempest's show/create schema: `qos_specs` (these keys, no other) and `links`.
QOS_KEYS = {"id", "name", "consumer", "specs"}


class Qos:
    def __init__(self, cluster: Cluster, project: str) -> None:
        self.cluster = cluster
        self.project = project
        self.base = f"{cluster.rest_url}/v3/{project}"
        self.client = httpx.Client()
        self.specs: list[str] = []
        self.types: list[str] = []

    def call(self, method: str, path: str, admin: bool = True, **kwargs: Any) -> httpx.Response:
        hdrs = headers(self.project, user="admin" if admin else "u1")
        return self.client.request(method, f"{self.base}{path}", headers=hdrs, **kwargs)

    def create(self, **qos_specs: Any) -> dict[str, Any]:
        response = self.call("POST", "/qos-specs", json={"qos_specs": qos_specs})
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()["qos_specs"]
        self.specs.append(created["id"])
        return created

    def volume_type(self) -> str:
        body = {"volume_type": {"name": f"qos-type-{uuid.uuid4().hex[:8]}"}}
        response = self.call("POST", "/types", json=body)
        assert response.status_code == 200, response.text
        type_id: str = response.json()["volume_type"]["id"]
        self.types.append(type_id)
        return type_id

    def close(self) -> None:
        for qos_id in self.specs:
            self.call("DELETE", f"/qos-specs/{qos_id}?force=True")
        for type_id in self.types:
            self.call("DELETE", f"/types/{type_id}")
        self.client.close()


@pytest.fixture()
def qos(cluster: Cluster, project: str) -> Iterator[Qos]:
    calls = Qos(cluster, project)
    yield calls
    calls.close()


def _name() -> str:
    return f"tempest-QoS-{uuid.uuid4().hex[:8]}"


def _error(response: httpx.Response, status: int) -> str:
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[
        status
    ]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {key} and body[key]["code"] == status
    message: str = body[key]["message"]
    return message


@pytest.mark.parametrize("consumer", ["front-end", "back-end", "both"])
def test_create_show_list_delete_with_each_consumer(qos: Qos, consumer: str) -> None:
    name = _name()
    response = qos.call(
        "POST", "/qos-specs", json={"qos_specs": {"name": name, "consumer": consumer, "a": "1"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"qos_specs", "links"}
    created = body["qos_specs"]
    assert set(created) == QOS_KEYS
    assert created == {"id": created["id"], "name": name, "consumer": consumer, "specs": {"a": "1"}}
    uuid.UUID(created["id"])
    url = f"{qos.base}/qos-specs/{created['id']}"
    bookmark = url.replace("/v3/", "/", 1)
    assert body["links"] == [{"href": url, "rel": "self"}, {"href": bookmark, "rel": "bookmark"}]

    shown = qos.call("GET", f"/qos-specs/{created['id']}")
    assert shown.status_code == 200
    assert shown.json() == body
    # Tempest: the created specs are in the list exactly as created.
    listed = qos.call("GET", "/qos-specs")
    assert listed.status_code == 200
    assert set(listed.json()) == {"qos_specs"}
    assert created in listed.json()["qos_specs"]
    assert all(set(item) == QOS_KEYS for item in listed.json()["qos_specs"])

    deleted = qos.call("DELETE", f"/qos-specs/{created['id']}?force=False")
    assert deleted.status_code == 202 and deleted.content == b""
    assert "No such QoS spec" in _error(qos.call("GET", f"/qos-specs/{created['id']}"), 404)
    assert created not in qos.call("GET", "/qos-specs").json()["qos_specs"]


def test_default_consumer_and_stripped_name(qos: Qos) -> None:
    name = _name()
    created = qos.create(name=f"  {name} ", read_iops_sec="2000")
    assert created["name"] == name
    assert created["consumer"] == "back-end"
    assert created["specs"] == {"read_iops_sec": "2000"}


def test_set_and_unset_keys(qos: Qos) -> None:
    created = qos.create(name=_name(), consumer="front-end", read_iops_sec="2000")
    path = f"/qos-specs/{created['id']}"
    updated = qos.call("PUT", path, json={"qos_specs": {"iops_bytes": "500"}})
    assert updated.status_code == 200, updated.text
    assert updated.json() == {"qos_specs": {"iops_bytes": "500"}}
    specs = qos.call("GET", path).json()["qos_specs"]["specs"]
    assert specs == {"read_iops_sec": "2000", "iops_bytes": "500"}

    # The consumer is set by its key, not kept among the specs.
    assert qos.call("PUT", path, json={"qos_specs": {"consumer": "both"}}).status_code == 200
    shown = qos.call("GET", path).json()["qos_specs"]
    assert shown["consumer"] == "both" and "consumer" not in shown["specs"]

    unset = qos.call("PUT", f"{path}/delete_keys", json={"keys": ["iops_bytes"]})
    assert unset.status_code == 202 and unset.content == b""
    assert qos.call("GET", path).json()["qos_specs"]["specs"] == {"read_iops_sec": "2000"}

    # Keys go up to the first that is not set (Cinder's order), then 404.
    missing = qos.call("PUT", f"{path}/delete_keys", json={"keys": ["read_iops_sec", "nope"]})
    assert _error(missing, 404) == f"QoS spec {created['id']} has no spec with key nope."
    assert qos.call("GET", path).json()["qos_specs"]["specs"] == {}


def test_associate_and_disassociate(qos: Qos, cluster: Cluster) -> None:
    created = qos.create(name=_name(), consumer="front-end")
    path = f"/qos-specs/{created['id']}"
    types = [qos.volume_type() for _ in range(3)]
    for type_id in types:
        associated = qos.call("GET", f"{path}/associate?vol_type_id={type_id}")
        assert associated.status_code == 202 and associated.content == b""
    rows = db_rows(cluster, "select id from volume_types where qos_specs_id = ?", created["id"])
    assert {row[0] for row in rows} == set(types)

    listed = qos.call("GET", f"{path}/associations")
    assert listed.status_code == 200
    associations = listed.json()["qos_associations"]
    assert {a["id"] for a in associations} == set(types)
    assert all(set(a) == {"association_type", "id", "name"} for a in associations)
    assert {a["association_type"] for a in associations} == {"volume_type"}
    assert all(a["name"].startswith("qos-type-") for a in associations)

    # Another specs may not take a type these have; associating again is fine.
    other = qos.create(name=_name())
    refused = qos.call("GET", f"/qos-specs/{other['id']}/associate?vol_type_id={types[0]}")
    assert _error(refused, 400) == (
        f"Invalid volume type: Type {types[0]} is already associated with another qos specs: "
        f"{created['id']}"
    )
    assert qos.call("GET", f"{path}/associate?vol_type_id={types[0]}").status_code == 202

    # In use: refused without force.
    in_use = qos.call("DELETE", path)
    assert _error(in_use, 400) == "Qos specs still in use."

    gone = qos.call("GET", f"{path}/disassociate?vol_type_id={types[0]}")
    assert gone.status_code == 202 and gone.content == b""
    left = {a["id"] for a in qos.call("GET", f"{path}/associations").json()["qos_associations"]}
    assert left == set(types[1:])

    everything = qos.call("GET", f"{path}/disassociate_all")
    assert everything.status_code == 202 and everything.content == b""
    assert qos.call("GET", f"{path}/associations").json() == {"qos_associations": []}

    # Force deletes specs still associated, and the type loses them.
    assert qos.call("GET", f"{path}/associate?vol_type_id={types[1]}").status_code == 202
    assert qos.call("DELETE", f"{path}?force=True").status_code == 202
    rows = db_rows(cluster, "select qos_specs_id from volume_types where id = ?", types[1])
    assert rows == [(None,)]


def test_association_errors(qos: Qos) -> None:
    created = qos.create(name=_name())
    path = f"/qos-specs/{created['id']}"
    missing_type = str(uuid.uuid4())
    for action in ("associate", "disassociate"):
        assert _error(qos.call("GET", f"{path}/{action}"), 400) == (
            "Volume Type id must not be None."
        )
        response = qos.call("GET", f"{path}/{action}?vol_type_id={missing_type}")
        assert _error(response, 404) == f"Volume type {missing_type} could not be found."
    missing = str(uuid.uuid4())
    for method, suffix in [
        ("GET", ""), ("GET", "/associations"), ("GET", "/disassociate_all"), ("DELETE", ""),
        ("GET", f"/associate?vol_type_id={missing_type}"),
    ]:  # fmt: skip
        response = qos.call(method, f"/qos-specs/{missing}{suffix}")
        assert _error(response, 404) == f"No such QoS spec {missing}.", suffix
    bad_force = qos.call("DELETE", f"{path}?force=maybe")
    assert _error(bad_force, 400) == "Value 'maybe' for 'force' is not a boolean."


def test_create_validation_and_conflict(qos: Qos) -> None:
    name = _name()
    qos.create(name=name)
    duplicate = qos.call("POST", "/qos-specs", json={"qos_specs": {"name": name}})
    assert _error(duplicate, 409) == f"QoS Specs {name} already exists."

    def create(body: Any) -> str:
        return _error(qos.call("POST", "/qos-specs", json=body), 400)

    assert create({}) == "'qos_specs' is a required property"
    assert create({"qos_specs": {"consumer": "both"}}) == (
        "Invalid input for field/attribute qos_specs. Value: {'consumer': 'both'}. "
        "'name' is a required property"
    )
    assert create({"qos_specs": {"name": "   "}}) == (
        "An invalid 'name' value was provided. The 'name' can not be empty."
    )
    assert create({"qos_specs": {"name": 5}}) == (
        "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"
    )
    assert create({"qos_specs": {"name": _name(), "a": 1}}) == (
        'Invalid input received: Value for key "a" is not a string or unicode'
    )
    assert create({"qos_specs": {"name": _name(), "a": "x" * 256}}) == (
        'Invalid input received: Value for key "a" has 256 characters, more than 255.'
    )
    assert create({"qos_specs": {"name": _name(), "consumer": "middle"}}).startswith(
        "Invalid qos specs: Valid consumer of QoS specs are: "
    )
    assert create({"qos_specs": {"name": _name()}, "x": 1}) == (
        "Additional properties are not allowed ('x' was unexpected)"
    )


def test_update_and_unset_validation(qos: Qos) -> None:
    created = qos.create(name=_name())
    path = f"/qos-specs/{created['id']}"
    response = qos.call("PUT", path, json={"qos_specs": {"consumer": "middle"}})
    assert _error(response, 400).startswith("Invalid qos specs: Valid consumer of QoS specs are:")
    assert _error(qos.call("PUT", path, json={}), 400) == "'qos_specs' is a required property"
    assert _error(qos.call("PUT", path, json={"qos_specs": {"a": 1}}), 400) == (
        "Invalid input for field/attribute a. Value: 1. 1 is not of type 'string', 'null'"
    )
    missing = str(uuid.uuid4())
    response = qos.call("PUT", f"/qos-specs/{missing}", json={"qos_specs": {"a": "1"}})
    assert _error(response, 404) == f"No such QoS spec {missing}."

    def unset(body: Any) -> str:
        return _error(qos.call("PUT", f"{path}/delete_keys", json=body), 400)

    assert unset({}) == "'keys' is a required property"
    assert unset({"keys": "a"}) == (
        "Invalid input for field/attribute keys. Value: a. 'a' is not of type 'array'"
    )
    assert unset({"keys": [1]}) == (
        "Invalid input for field/attribute 0. Value: 1. 1 is not of type 'string'"
    )
    assert unset({"keys": ["a", "a"]}) == (
        "Invalid input for field/attribute keys. Value: ['a', 'a']. "
        "['a', 'a'] has non-unique elements"
    )


def test_every_call_is_for_admins(qos: Qos) -> None:
    created = qos.create(name=_name())
    path = f"/qos-specs/{created['id']}"
    for method, suffix, rule, body in [
        ("GET", "", "get_all", None),
        ("POST", "", "create", {"qos_specs": {"name": _name()}}),
        ("GET", f"/{created['id']}", "get", None),
        ("PUT", f"/{created['id']}", "update", {"qos_specs": {"a": "1"}}),
        ("DELETE", f"/{created['id']}", "delete", None),
        ("PUT", f"/{created['id']}/delete_keys", "delete", {"keys": ["a"]}),
        ("GET", f"/{created['id']}/associations", "get_all", None),
        ("GET", f"/{created['id']}/disassociate_all", "update", None),
    ]:
        response = qos.call(method, f"/qos-specs{suffix}", admin=False, json=body)
        assert _error(response, 403) == (
            f"Policy doesn't allow volume_extension:qos_specs_manage:{rule} to be performed."
        )
    assert qos.call("GET", path).status_code == 200
