"""Volume types' resources over REST through Envoy against the real processes: update, extra
specs, access and encryption, with the exact keys of each answer as Tempest's strict response
schemas require them (written out here: admins' and users' views of a type differ by answer)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
#: The keys of a type in each answer, for admins (users: no qos_specs_id).
CREATE_KEYS = {
    "id",
    "name",
    "description",
    "is_public",
    "extra_specs",
    "os-volume-type-access:is_public",
}
SHOW_KEYS = CREATE_KEYS | {"qos_specs_id"}
UPDATE_KEYS = {"id", "name", "description", "is_public", "extra_specs"}
ENCRYPTION_ROW_KEYS = {
    "volume_type_id", "encryption_id", "key_size", "provider", "control_location", "cipher",
    "deleted", "created_at", "updated_at", "deleted_at",
}  # fmt: skip


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _error(kind: str, code: int, message: str) -> dict[str, Any]:
    return {kind: {"code": code, "message": message}}


def _bad(message: str) -> dict[str, Any]:
    return _error("badRequest", 400, message)


def _not_found(message: str) -> dict[str, Any]:
    return _error("itemNotFound", 404, message)


def _type_shape(view: dict[str, Any], keys: set[str]) -> None:
    assert set(view) == keys, sorted(set(view) ^ keys)
    assert UUID.match(view["id"]) and isinstance(view["name"], str)
    assert isinstance(view["is_public"], bool)
    assert view["description"] is None or isinstance(view["description"], str)
    assert all(isinstance(v, str) for v in view.get("extra_specs", {}).values())


def _create(client: httpx.Client, url: str, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    created = client.post(
        url, headers=admin, json={"volume_type": {"name": _unique("t"), **fields}}
    )
    assert created.status_code == 200, created.text
    assert set(created.json()) == {"volume_type"}
    view: dict[str, Any] = created.json()["volume_type"]
    _type_shape(view, CREATE_KEYS)
    return view


def test_type_views_and_update(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    url = f"{cluster.rest_url}/v3/{project}/types"
    with httpx.Client() as client:
        made = _create(client, url, admin, description="d", extra_specs={"vendor_name": "x"})
        type_url = f"{url}/{made['id']}"
        _type_shape(client.get(type_url, headers=admin).json()["volume_type"], SHOW_KEYS)
        _type_shape(client.get(type_url, headers=user).json()["volume_type"], CREATE_KEYS)
        for listed in client.get(url, headers=admin).json()["volume_types"]:
            _type_shape(listed, SHOW_KEYS)
        for listed in client.get(url, headers=user).json()["volume_types"]:
            _type_shape(listed, CREATE_KEYS)

        name = _unique("renamed")
        body = {"volume_type": {"name": name, "description": "new", "is_public": False}}
        updated = client.put(type_url, headers=admin, json=body)
        assert updated.status_code == 200, updated.text
        view = updated.json()["volume_type"]
        _type_shape(view, UPDATE_KEYS)
        assert (view["name"], view["description"], view["is_public"]) == (name, "new", False)
        assert view["extra_specs"] == {"vendor_name": "x"}
        shown = client.get(type_url, headers=admin).json()["volume_type"]
        assert (shown["name"], shown["is_public"]) == (name, False)
        assert client.get(type_url, headers=user).status_code == 404

        refusals = [
            ({"volume_type": {}}, "Specify volume type name, description, is_public or a "
             "combination thereof."),
            ({"volume_type": {"name": "  "}}, "Volume type name can not be empty."),
            ({"volume_type": {"k": 1}}, "Invalid input for field/attribute volume_type. Value: "
             "{'k': 1}. Additional properties are not allowed ('k' was unexpected)"),
            ({"volume_type": {"is_public": "maybe"}}, None),
            ({}, "'volume_type' is a required property"),
        ]  # fmt: skip
        for refused_body, message in refusals:
            refused = client.put(type_url, headers=admin, json=refused_body)
            assert refused.status_code == 400, refused_body
            if message is not None:
                assert refused.json() == _bad(message)
        other = _create(client, url, admin)
        taken = client.put(type_url, headers=admin, json={"volume_type": {"name": other["name"]}})
        assert taken.status_code == 409
        assert taken.json() == _error(
            "conflictingRequest", 409, f"Volume Type {other['name']} already exists."
        )
        forbidden = client.put(type_url, headers=user, json=body)
        assert forbidden.status_code == 403
        missing = client.put(f"{url}/{uuid.uuid4()}", headers=admin, json=body)
        assert missing.status_code == 404


def test_qos_specs_id_shows_the_association(cluster: Cluster, project: str) -> None:
    """Admins' list and show carry the associated QoS specs' id (null without); create and
    update answers and users' views never have the key (Tempest's schemas)."""
    admin, user = headers(project, user="admin"), headers(project)
    base = f"{cluster.rest_url}/v3/{project}"
    url = f"{base}/types"
    with httpx.Client() as client:
        made = _create(client, url, admin)
        type_url = f"{url}/{made['id']}"
        assert client.get(type_url, headers=admin).json()["volume_type"]["qos_specs_id"] is None
        qos = client.post(
            f"{base}/qos-specs",
            headers=admin,
            json={"qos_specs": {"name": _unique("q"), "consumer": "back-end", "a": "1"}},
        )
        assert qos.status_code == 200, qos.text
        qos_id = qos.json()["qos_specs"]["id"]
        associate = f"{base}/qos-specs/{qos_id}/associate?vol_type_id={made['id']}"
        assert client.get(associate, headers=admin).status_code == 202
        try:
            shown = client.get(type_url, headers=admin).json()["volume_type"]
            _type_shape(shown, SHOW_KEYS)
            assert shown["qos_specs_id"] == qos_id
            listed = client.get(url, headers=admin).json()["volume_types"]
            (mine,) = [t for t in listed if t["id"] == made["id"]]
            assert mine == shown
            _type_shape(client.get(type_url, headers=user).json()["volume_type"], CREATE_KEYS)
            body = {"volume_type": {"description": "with qos"}}
            updated = client.put(type_url, headers=admin, json=body)
            assert updated.status_code == 200, updated.text
            _type_shape(updated.json()["volume_type"], UPDATE_KEYS)
        finally:
            disassociate = f"{base}/qos-specs/{qos_id}/disassociate?vol_type_id={made['id']}"
            assert client.get(disassociate, headers=admin).status_code == 202
            client.delete(f"{base}/qos-specs/{qos_id}", headers=admin)
        assert client.get(type_url, headers=admin).json()["volume_type"]["qos_specs_id"] is None


def test_extra_specs(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    url = f"{cluster.rest_url}/v3/{project}/types"
    with httpx.Client() as client:
        made = _create(client, url, admin, extra_specs={"spec1": "val1"})
        specs_url = f"{url}/{made['id']}/extra_specs"
        listed = client.get(specs_url, headers=admin)
        assert listed.status_code == 200 and listed.json() == {"extra_specs": {"spec1": "val1"}}
        added = {"spec2": "v2", "multiattach": "<is> True"}
        created = client.post(specs_url, headers=admin, json={"extra_specs": added})
        assert created.status_code == 200 and created.json() == {"extra_specs": added}
        assert client.get(specs_url, headers=user).json() == {
            "extra_specs": {"multiattach": "<is> True"}
        }
        one = client.get(f"{specs_url}/spec2", headers=admin)
        assert one.status_code == 200 and one.json() == {"spec2": "v2"}
        assert client.get(f"{specs_url}/spec2", headers=user).status_code == 404
        put = client.put(f"{specs_url}/spec2", headers=admin, json={"spec2": "v3"})
        assert put.status_code == 200 and put.json() == {"spec2": "v3"}
        assert client.get(f"{specs_url}/spec2", headers=admin).json() == {"spec2": "v3"}

        mismatch = client.put(f"{specs_url}/None", headers=admin, json={"spec1": "x"})
        assert mismatch.status_code == 400
        assert mismatch.json() == _bad("Request body and URI mismatch")
        many = client.put(f"{specs_url}/spec1", headers=admin, json={"spec1": "a", "b": "c"})
        assert many.status_code == 400
        assert many.json() == _bad("{'b': 'c', 'spec1': 'a'} has too many properties")
        for body in ({"extra_specs": None}, {"extra_specs": ["invalid"]}, {}):
            assert client.post(specs_url, headers=admin, json=body).status_code == 400, body
        assert client.put(f"{specs_url}/spec1", headers=admin, content=b"null").status_code == 400
        spaced = client.post(specs_url, headers=admin, json={"extra_specs": {"a b": "c"}})
        assert spaced.status_code == 400
        cached = client.post(
            specs_url, headers=admin, json={"extra_specs": {"cacheable": "<is> True"}}
        )
        assert cached.json() == _bad("cacheable cannot be set with multiattach.")
        refused = client.post(specs_url, headers=user, json={"extra_specs": {"a": "b"}})
        assert refused.status_code == 403

        missing_type = f"{url}/{uuid.uuid4()}/extra_specs"
        assert client.get(missing_type, headers=admin).status_code == 404
        assert client.get(f"{missing_type}/spec1", headers=admin).status_code == 404
        assert (
            client.post(missing_type, headers=admin, json={"extra_specs": {"a": "b"}}).status_code
            == 404
        )
        assert client.put(f"{missing_type}/a", headers=admin, json={"a": "b"}).status_code == 404
        assert client.delete(f"{missing_type}/a", headers=admin).status_code == 404

        deleted = client.delete(f"{specs_url}/spec2", headers=admin)
        assert deleted.status_code == 202 and deleted.content == b""
        gone = client.get(f"{specs_url}/spec2", headers=admin)
        assert gone.json() == _not_found(
            f"Volume Type {made['id']} has no extra specs with key spec2."
        )
        assert client.delete(f"{specs_url}/spec2", headers=admin).status_code == 404

        # A type in use: its extra specs cannot change.
        made = _create(client, url, admin)
        specs_url = f"{url}/{made['id']}/extra_specs"
        volumes_url = f"{cluster.rest_url}/v3/{project}/volumes"
        volume = client.post(
            volumes_url, headers=user, json={"volume": {"size": 1, "volume_type": made["id"]}}
        )
        assert volume.status_code == 202, volume.text
        volume_url = f"{volumes_url}/{volume.json()['volume']['id']}"
        wait_for_status(client, volume_url, user, "available")
        in_use = _bad("Volume Type is currently in use.")
        assert (
            client.post(specs_url, headers=admin, json={"extra_specs": {"a": "b"}}).json() == in_use
        )
        assert client.put(f"{specs_url}/spec1", headers=admin, json={"spec1": "b"}).json() == in_use
        assert client.delete(f"{specs_url}/spec1", headers=admin).json() == in_use
        assert client.delete(volume_url, headers=user).status_code == 202
        wait_for_404(client, volume_url, user)


def test_type_access(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    other_project = uuid.uuid4().hex
    url = f"{cluster.rest_url}/v3/{project}/types"
    with httpx.Client() as client:
        private = _create(client, url, admin, **{"os-volume-type-access:is_public": False})
        type_url = f"{url}/{private['id']}"
        access_url = f"{type_url}/os-volume-type-access"
        assert client.get(access_url, headers=admin).json() == {"volume_type_access": []}
        assert client.get(type_url, headers=user).status_code == 404

        for project_id in (project, other_project):
            body = {"addProjectAccess": {"project": project_id}}
            added = client.post(f"{type_url}/action", headers=admin, json=body)
            assert added.status_code == 202 and added.content == b""
        again = client.post(f"{type_url}/action", headers=admin, json=body)
        assert again.status_code == 409
        assert again.json() == _error(
            "conflictingRequest", 409,
            f"Volume type access for {private['id']} / {other_project} combination already "
            "exists.",
        )  # fmt: skip
        listed = client.get(access_url, headers=admin)
        assert listed.status_code == 200
        assert sorted(listed.json()["volume_type_access"], key=lambda a: a["project_id"]) == sorted(
            ({"volume_type_id": private["id"], "project_id": p} for p in (project, other_project)),
            key=lambda a: a["project_id"],
        )
        # Shared with the user's project: shown, listed and usable.
        assert client.get(type_url, headers=user).status_code == 200
        ids = [t["id"] for t in client.get(url, headers=user).json()["volume_types"]]
        assert private["id"] in ids
        assert client.get(access_url, headers=user).status_code == 403

        body = {"removeProjectAccess": {"project": project}}
        removed = client.post(f"{type_url}/action", headers=admin, json=body)
        assert removed.status_code == 202
        assert client.get(type_url, headers=user).status_code == 404
        again = client.post(f"{type_url}/action", headers=admin, json=body)
        assert again.json() == _not_found(
            f"Volume type access not found for {private['id']} / {project} combination."
        )

        public = _create(client, url, admin)
        public_url = f"{url}/{public['id']}"
        assert client.get(f"{public_url}/os-volume-type-access", headers=admin).json() == (
            _not_found("Access list not available for public volume types.")
        )
        refused = client.post(
            f"{public_url}/action", headers=admin, json={"addProjectAccess": {"project": "p"}}
        )
        assert refused.json() == _bad(
            "Invalid volume type: Type access modification is not applicable to public volume type."
        )
        for body, message in [
            ({"a": {}, "b": {}}, "Malformed request body"),
            ({"nope": {}}, "There is no such action: nope. Verify the request body and "
             "Content-Type header and try again."),
            ({"addProjectAccess": {}}, "Invalid input for field/attribute addProjectAccess. "
             "Value: {}. 'project' is a required property"),
        ]:  # fmt: skip
            bad = client.post(f"{type_url}/action", headers=admin, json=body)
            assert bad.status_code == 400 and bad.json() == _bad(message), bad.text
        forbidden = client.post(
            f"{type_url}/action", headers=user, json={"addProjectAccess": {"project": "p"}}
        )
        assert forbidden.status_code == 403


def test_encryption(cluster: Cluster, project: str) -> None:
    admin, user = headers(project, user="admin"), headers(project)
    url = f"{cluster.rest_url}/v3/{project}/types"
    with httpx.Client() as client:
        made = _create(client, url, admin)
        enc_url = f"{url}/{made['id']}/encryption"
        empty = client.get(enc_url, headers=admin)
        assert empty.status_code == 200 and empty.json() == {}
        spec = {
            "provider": "LuksEncryptor", "key_size": 256, "cipher": "aes-xts-plain64",
            "control_location": "front-end",
        }  # fmt: skip
        created = client.post(enc_url, headers=admin, json={"encryption": spec})
        assert created.status_code == 200, created.text
        encryption = created.json()["encryption"]
        assert set(encryption) == set(spec) | {"volume_type_id", "encryption_id"}
        assert encryption["key_size"] == 256 and encryption["volume_type_id"] == made["id"]
        assert UUID.match(encryption["encryption_id"])

        shown = client.get(enc_url, headers=admin).json()
        assert set(shown) == ENCRYPTION_ROW_KEYS
        assert {k: shown[k] for k in spec} == spec
        assert TIME.match(shown["created_at"]) and shown["updated_at"] is None
        assert shown["deleted"] is False and shown["deleted_at"] is None
        assert client.get(f"{enc_url}/cipher", headers=admin).json() == {
            "cipher": "aes-xts-plain64"
        }
        assert client.get(f"{enc_url}/nope", headers=admin).json() == _not_found(
            f"Volume type encryption for type {made['id']} does not exist."
        )
        again = client.post(enc_url, headers=admin, json={"encryption": spec})
        assert again.json() == _bad(f"Volume type encryption for type {made['id']} already exists.")

        change = {"key_size": 128, "provider": "SomeProvider", "control_location": "back-end"}
        item_url = f"{enc_url}/{encryption['encryption_id']}"
        updated = client.put(item_url, headers=admin, json={"encryption": change})
        assert updated.status_code == 200 and updated.json() == {"encryption": change}
        shown = client.get(enc_url, headers=admin).json()
        assert {k: shown[k] for k in change} == change and TIME.match(shown["updated_at"])

        for body, status in [
            ({"encryption": {"provider": "p"}}, 400),
            ({"encryption": {"provider": "p", "control_location": "middle"}}, 400),
            ({"encryption": {"provider": "p", "control_location": "front-end", "key_size": -1}}, 400),
            ({"encryption": {"provider": "p", "control_location": "front-end", "key_size": "x"}}, 400),
        ]:  # fmt: skip
            assert client.put(item_url, headers=admin, json=body).status_code in (status, 200)
        bad_size = client.post(
            f"{url}/{_create(client, url, admin)['id']}/encryption",
            headers=admin,
            json={
                "encryption": {"provider": "p", "control_location": "front-end", "key_size": "x"}
            },
        )
        assert bad_size.json() == _bad("Invalid input received: key_size must be an integer.")
        assert client.get(enc_url, headers=user).status_code == 403
        missing = f"{url}/{uuid.uuid4()}/encryption"
        assert client.post(missing, headers=admin, json={"encryption": spec}).status_code == 404
        assert client.get(missing, headers=admin).status_code == 404

        deleted = client.delete(item_url, headers=admin)
        assert deleted.status_code == 202 and deleted.content == b""
        assert client.get(enc_url, headers=admin).json() == {}
        assert client.delete(item_url, headers=admin).status_code == 404
        assert client.delete(f"{url}/{made['id']}", headers=admin).status_code == 202
