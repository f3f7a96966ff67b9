"""Attachments (``/v3/{project}/attachments``, 3.27 on, os-complete 3.44 on) and the legacy
attach actions, over REST through Envoy against the real processes, on the file driver.

Written from the REST contract, i.e. from Cinder's and its clients' sources:

- Nova's sequence exactly as ``nova/volume/cinder.py`` and its callers issue it
  (``nova/compute/utils.py`` ``check_attach_and_reserve_volume``, ``nova/virt/block_device.py``
  ``_volume_attach``/``_do_detach``, ``nova/compute/api.py`` ``_detach_volume``): volume GETs at
  3.0 and at 3.69 (or 3.48), ``attachment_create`` with ``"connector": null`` (cinderclient's
  body), ``attachment_update`` with the os-brick connector plus ``mountpoint``,
  ``attachment_complete``, ``os-begin_detaching`` and ``attachment_delete``, every call of the
  attachments API at 3.44 (``cinderclient(context, '3.44')``);
- every answer checked against ``cinder/api/v3/views/attachments.py`` (detail and summary) and
  the volume's ``attachments[]`` against ``cinder/api/v3/views/volumes.py`` ``_get_attachments``;
  the states against ``cinder/volume/api.py`` (``_attachment_reserve``, ``attachment_create``,
  ``attachment_update``, ``attachment_delete``), ``cinder/volume/manager.py``
  (``_connection_create``, ``attachment_update``, ``_parse_connection_options``) and
  ``cinder/db/api.py`` (``volume_attached``, ``volume_detached``); bodies against
  ``cinder/api/schemas/attachments.py`` and ``volume_actions.py``;
- the legacy sequence as Terraform's ``openstack_blockstorage_volume_attach_v3`` issues it
  through gophercloud's ``volumeactions`` (os-initialize_connection, os-attach with
  ``host_name``; os-terminate_connection, os-detach: no os-reserve and no os-begin_detaching in
  that resource) and as Nova's legacy flow (os-reserve ... os-begin_detaching) does;
- failure paths (attach while ``creating``/``error``, a second attachment of a non-multiattach
  volume, a failed connection rolled back, force-detach of an attachment whose host is gone,
  reset-status) each leaving the volume ``available`` or ``in-use`` as Cinder would;
- 20 concurrent attach/detach cycles on one multiattach volume, the volume's status checked
  against its attachment rows at every checkpoint and by a watcher reading the database.

RBD: ``test_attachments_rbd``."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client_helpers import cinderclient_at
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, wait_for_status

ADMIN = "admin"
#: nova/volume/cinder.py: every attachments call is ``cinderclient(context, '3.44')``.
NOVA_ATTACH = "3.44"
#: nova/virt/block_device.py ``_get_volume``: 3.69 first, then 3.48, then plain v3.
NOVA_GET = ("3.69", "3.48")
DETAIL_KEYS = {
    "id", "status", "instance", "volume_id", "attached_at", "detached_at", "attach_mode",
    "connection_info",
}  # fmt: skip
SUMMARY_KEYS = {"id", "status", "instance", "volume_id"}
VOLUME_ATTACHMENT_KEYS = {
    "id", "attachment_id", "volume_id", "server_id", "host_name", "device", "attached_at",
}  # fmt: skip
#: oslo.serialization's ``PERFECT_TIME_FORMAT`` (Cinder's JSON datetimes, naive UTC).
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
NOT_FOUND = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}


class Api:
    """One project's REST calls, as its member ``u1`` or as the cloud's ``admin``."""

    def __init__(self, client: httpx.Client, cluster: Cluster, project: str) -> None:
        self.client = client
        self.cluster = cluster
        self.project = project
        self.base = f"{cluster.rest_url}/v3/{project}"

    def hdrs(
        self, admin: bool = False, version: str | None = None, token: str | None = None
    ) -> dict[str, str]:
        result = {
            "X-Auth-Token": token or f"{ADMIN if admin else 'u1'}:{self.project}",
            "Content-Type": "application/json",
        }
        if version is not None:
            result["OpenStack-API-Version"] = f"volume {version}"
        return result

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        version: str | None = None,
        admin: bool = False,
        token: str | None = None,
    ) -> httpx.Response:
        """``path`` under ``/v3/{project}``; ``body`` sent as JSON unless None."""
        return self.client.request(
            method,
            f"{self.base}{path}",
            headers=self.hdrs(admin, version, token),
            content=None if body is None else json.dumps(body).encode(),
        )

    def ok(self, method: str, path: str, status: int, body: Any = None, **kw: Any) -> Any:
        response = self.call(method, path, body, **kw)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    # --- volumes ---------------------------------------------------------------------------

    def create_volume(self, volume_type: str | None = None) -> str:
        body: dict[str, Any] = {"size": 1}
        if volume_type is not None:
            body["volume_type"] = volume_type
        volume_id: str = self.ok("POST", "/volumes", 202, {"volume": body})["volume"]["id"]
        deadline = time.monotonic() + 30.0
        while (status := self.volume(volume_id, admin=True)["status"]) != "available":
            if status == "error":
                messages = self.ok("GET", "/messages", 200, version="3.3")["messages"]
                reasons = [m["user_message"] for m in messages if m["resource_uuid"] == volume_id]
                raise AssertionError(f"volume {volume_id} ({volume_type}) in error: {reasons}")
            assert time.monotonic() < deadline, f"volume {volume_id} still {status}"
            time.sleep(0.02)
        return volume_id

    def wait(self, volume_id: str, status: str) -> dict[str, Any]:
        url = f"{self.base}/volumes/{volume_id}"
        return wait_for_status(self.client, url, self.hdrs(admin=True), status)

    def volume(
        self, volume_id: str, version: str | None = None, admin: bool = False
    ) -> dict[str, Any]:
        shown: dict[str, Any] = self.ok(
            "GET", f"/volumes/{volume_id}", 200, version=version, admin=admin
        )["volume"]
        return shown

    def action(
        self, volume_id: str, body: Any, admin: bool = False, version: str | None = None
    ) -> httpx.Response:
        return self.call("POST", f"/volumes/{volume_id}/action", body, admin=admin, version=version)

    def multiattach_type(self) -> str:
        body = {
            "volume_type": {
                "name": f"multi-{uuid.uuid4().hex[:8]}",
                "extra_specs": {"multiattach": "<is> True"},
            }
        }
        name: str = self.ok("POST", "/types", 200, body, admin=True)["volume_type"]["name"]
        return name

    # --- the database the services write ----------------------------------------------------

    def states(self, volume_id: str) -> tuple[str, str]:
        """The volume row's ``(status, attach_status)``."""
        rows = db_rows(
            self.cluster, "select status, attach_status from volumes where id = ?", volume_id
        )
        assert len(rows) == 1, rows
        return rows[0][0], rows[0][1]

    def rows(self, volume_id: str) -> list[dict[str, Any]]:
        """The volume's attachment rows, oldest first."""
        columns = (
            "id", "instance_uuid", "attach_status", "attached_host", "mountpoint",
            "attach_mode", "connector", "connection_info", "attach_time", "project_id",
        )  # fmt: skip
        query = (
            f"select {', '.join(columns)} from volume_attachment where volume_id = ? "
            "order by created_at, id"
        )
        return [
            dict(zip(columns, row, strict=True)) for row in db_rows(self.cluster, query, volume_id)
        ]

    def image(self, volume_id: str) -> Path:
        root = self.cluster.data_dir / "volumes"
        found = [p for p in root.rglob(f"volume-{volume_id}") if p.is_file()]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def api(cluster: Cluster, project: str) -> Iterator[Api]:
    with httpx.Client(timeout=60.0) as client:
        yield Api(client, cluster, project)


def fault(response: httpx.Response, status: int, key: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {key: {"code": status, "message": message}}


def bad_request(response: httpx.Response, message: str) -> None:
    fault(response, 400, "badRequest", message)


def os_brick_connector(host: str) -> dict[str, Any]:
    """What Nova's libvirt driver sends (``get_volume_connector``: os-brick's
    ``get_connector_properties`` of the compute host)."""
    return {
        "platform": "x86_64",
        "os_type": "linux",
        "ip": "192.0.2.10",
        "host": host,
        "multipath": False,
        "initiator": f"iqn.2004-10.com.ubuntu:01:{host}",
        "do_local_attach": False,
        "nvme_hostid": "9f5a6b0e-5e2f-4a33-8a9b-0d5d0c1e7b11",
        "uuid": "4c4c4544-0051-3510-8052-b4c04f4e3732",
        "system uuid": "4C4C4544-0051-3510-8052-B4C04F4E3732",
        "nqn": "nqn.2014-08.org.nvmexpress:uuid:4c4c4544-0051-3510-8052-b4c04f4e3732",
        "nvme_native_multipath": False,
        "found_dsc": "",
    }


def nova_translate(attachment: dict[str, Any]) -> dict[str, Any]:
    """What Nova makes of an attachment answer (``nova/volume/cinder.py``
    ``_translate_attachment_ref``): the old-style ``{"driver_volume_type", "data": {...}}``
    connection_info rebuilt from Cinder's flattened one."""
    ref = dict(attachment)
    flat = dict(ref.pop("connection_info", None) or {})
    translated: dict[str, Any] = {}
    if flat:
        flat.pop("attachment_id", None)
        translated["driver_volume_type"] = flat.pop("driver_volume_type", None)
        translated["data"] = flat
        for key in ("status", "instance", "attached_at", "detached_at"):
            translated[key] = ref.pop(key, None)
        translated |= {k: v for k, v in ref.items() if k not in ("id", "attach_mode")}
    ref["connection_info"] = translated
    return ref


class Nova:
    """The Cinder calls of one Nova attach and detach, in Nova's order and with its bodies."""

    def __init__(self, api: Api, get_version: str = NOVA_GET[0]) -> None:
        self.api = api
        self.get_version = get_version

    def get_volume_api(self, volume_id: str) -> dict[str, Any]:
        """``nova/compute/api.py``: ``volume_api.get`` with no microversion (3.0: no header)."""
        return self.api.volume(volume_id)

    def get_volume_compute(self, volume_id: str) -> dict[str, Any]:
        """``DriverVolumeBlockDevice._get_volume``: the tri-state shared_targets version."""
        return self.api.volume(volume_id, version=self.get_version)

    def attachment_create(self, volume_id: str, instance: str) -> httpx.Response:
        # cinderclient's VolumeAttachmentManager.create: connector always present (None).
        body = {
            "attachment": {"volume_uuid": volume_id, "connector": None, "instance_uuid": instance}
        }
        return self.api.call("POST", "/attachments", body, version=NOVA_ATTACH)

    def attachment_update(
        self, attachment_id: str, connector: dict[str, Any], mountpoint: str
    ) -> httpx.Response:
        # nova/volume/cinder.py attachment_update: the mountpoint travels in the connector.
        body = {"attachment": {"connector": connector | {"mountpoint": mountpoint}}}
        return self.api.call("PUT", f"/attachments/{attachment_id}", body, version=NOVA_ATTACH)

    def attachment_complete(self, attachment_id: str) -> httpx.Response:
        body = {"os-complete": None}
        return self.api.call(
            "POST", f"/attachments/{attachment_id}/action", body, version=NOVA_ATTACH
        )

    def begin_detaching(self, volume_id: str) -> httpx.Response:
        return self.api.action(volume_id, {"os-begin_detaching": None})

    def attachment_delete(self, attachment_id: str) -> httpx.Response:
        return self.api.call("DELETE", f"/attachments/{attachment_id}", version=NOVA_ATTACH)

    def attach(self, volume_id: str, instance: str, host: str, mountpoint: str = "/dev/vdb") -> str:
        """The whole attach, every answer as Nova needs it; returns the attachment id."""
        self.get_volume_api(volume_id)
        created = self.attachment_create(volume_id, instance)
        assert created.status_code == 200, created.text
        attachment_id: str = created.json()["attachment"]["id"]
        self.get_volume_compute(volume_id)
        updated = self.attachment_update(attachment_id, os_brick_connector(host), mountpoint)
        assert updated.status_code == 200, updated.text
        completed = self.attachment_complete(attachment_id)
        assert completed.status_code == 204, completed.text
        return attachment_id

    def detach(self, volume_id: str, attachment_id: str) -> None:
        self.get_volume_api(volume_id)
        assert self.begin_detaching(volume_id).status_code == 202
        self.get_volume_compute(volume_id)
        deleted = self.attachment_delete(attachment_id)
        assert deleted.status_code == 200, deleted.text


def expected_local_connection(api: Api, volume_id: str, attachment_id: str) -> dict[str, Any]:
    """The file driver's connection information as the attachment answers it: the driver's
    ``local`` data (the image's path), what Cinder's manager adds to every driver's
    (``_parse_connection_options``: qos_specs, access_mode, encrypted, cacheable for a typed
    volume) and what ``_connection_create`` adds when it flattens it."""
    return {
        "driver_volume_type": "local",
        "device_path": str(api.image(volume_id)),
        "volume_id": volume_id,
        "qos_specs": None,
        "access_mode": "rw",
        "encrypted": False,
        "cacheable": False,
        "attachment_id": attachment_id,
        "enforce_multipath": False,
    }


def volume_attachment(
    volume_id: str, attachment_id: str, instance: str | None, host: str | None, device: str
) -> dict[str, Any]:
    """One entry of a volume's ``attachments`` (``_get_attachments``; ``attached_at`` apart)."""
    return {
        "id": volume_id,
        "attachment_id": attachment_id,
        "volume_id": volume_id,
        "server_id": instance,
        "host_name": host,
        "device": device,
    }


def without_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for entry in entries:
        assert set(entry) == VOLUME_ATTACHMENT_KEYS, entry
        assert TIMESTAMP.match(entry["attached_at"]), entry
    return [{k: v for k, v in e.items() if k != "attached_at"} for e in entries]


# --- Nova's sequence -------------------------------------------------------------------------


@pytest.mark.parametrize("get_version", NOVA_GET)
def test_nova_attach_and_detach_as_nova_issues_them(api: Api, get_version: str) -> None:
    nova = Nova(api, get_version)
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    host = "compute-1"
    connector = os_brick_connector(host)
    service_uuid = db_rows(api.cluster, "select service_uuid from volumes where id = ?", vid)[0][0]
    assert service_uuid is not None
    assert (service_uuid,) in db_rows(api.cluster, "select uuid from services")

    # compute API: GET the volume (no microversion), then attachment_create without connector.
    before = nova.get_volume_api(vid)
    assert (before["status"], before["attachments"], before["multiattach"]) == (
        "available",
        [],
        False,
    )
    created = nova.attachment_create(vid, instance)
    assert created.status_code == 200, created.text
    attachment = created.json()["attachment"]
    aid = attachment["id"]
    assert attachment == {
        "id": aid,
        "status": "reserved",
        "instance": instance,
        "volume_id": vid,
        "attached_at": "",
        "detached_at": "",
        "attach_mode": "null",
        "connection_info": {},
    }
    assert uuid.UUID(aid)
    assert api.states(vid) == ("reserved", "detached")
    [row] = api.rows(vid)
    assert (row["id"], row["instance_uuid"], row["attach_status"], row["connector"]) == (
        aid,
        instance,
        "reserved",
        None,
    )
    assert row["project_id"] == api.project

    # compute manager: GET the volume at 3.69 (3.48), which Nova reads shared_targets from.
    reserved = nova.get_volume_compute(vid)
    assert reserved["status"] == "reserved"
    assert reserved["attachments"] == []
    assert (reserved["shared_targets"], reserved["service_uuid"]) == (False, service_uuid)

    # attachment_update: the connector (with the mountpoint) -> the connection information.
    updated = nova.attachment_update(aid, connector, "/dev/vdb")
    assert updated.status_code == 200, updated.text
    answer = updated.json()["attachment"]
    assert set(answer) == DETAIL_KEYS
    expected = expected_local_connection(api, vid, aid)
    assert answer["connection_info"] == expected
    assert (answer["id"], answer["instance"], answer["volume_id"]) == (aid, instance, vid)
    translated = nova_translate(answer)["connection_info"]
    assert translated["driver_volume_type"] == "local"
    assert translated["data"] == {
        k: v for k, v in expected.items() if k not in ("driver_volume_type", "attachment_id")
    }
    assert Path(translated["data"]["device_path"]).is_file()
    assert api.states(vid) == ("attaching", "attaching")
    [row] = api.rows(vid)
    assert json.loads(row["connector"]) == connector | {"mountpoint": "/dev/vdb"}
    assert (row["attach_status"], row["attached_host"], row["mountpoint"], row["attach_mode"]) == (
        "attaching",
        host,
        "/dev/vdb",
        "rw",
    )
    assert row["attach_time"] is not None
    shown = api.ok("GET", f"/attachments/{aid}", 200, version=NOVA_ATTACH)["attachment"]
    assert shown["status"] == "attaching"
    assert shown["attach_mode"] == "rw"
    assert TIMESTAMP.match(shown["attached_at"]), shown
    assert shown["detached_at"] == ""
    assert shown["connection_info"] == expected
    attaching = nova.get_volume_compute(vid)
    assert (attaching["status"], attaching["attachments"]) == ("attaching", [])

    # attachment_complete: 204, no body; the volume in-use and its attachment listed.
    completed = nova.attachment_complete(aid)
    assert completed.status_code == 204, completed.text
    assert completed.content == b""
    assert api.states(vid) == ("in-use", "attached")
    assert api.rows(vid)[0]["attach_status"] == "attached"
    done = api.ok("GET", f"/attachments/{aid}", 200, version=NOVA_ATTACH)["attachment"]
    assert (done["status"], done["attached_at"], done["detached_at"]) == (
        "attached",
        shown["attached_at"],
        "",
    )
    in_use = nova.get_volume_compute(vid)
    assert in_use["status"] == "in-use"
    assert without_time(in_use["attachments"]) == [
        volume_attachment(vid, aid, instance, None, "/dev/vdb")
    ]
    assert in_use["attachments"][0]["attached_at"] == shown["attached_at"]
    # host_name only for admins (and services): the connector's host.
    as_admin = api.volume(vid, version=get_version, admin=True)
    assert without_time(as_admin["attachments"]) == [
        volume_attachment(vid, aid, instance, host, "/dev/vdb")
    ]
    # What Nova's detach reads: attachments[server_id].attachment_id.
    assert {
        a["server_id"]: a["attachment_id"] for a in nova.get_volume_api(vid)["attachments"]
    } == {instance: aid}

    # Detach: os-begin_detaching (compute API), then attachment_delete (compute manager).
    assert nova.begin_detaching(vid).status_code == 202
    assert api.states(vid) == ("detaching", "attached")
    assert nova.get_volume_compute(vid)["status"] == "detaching"
    deleted = nova.attachment_delete(aid)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"attachments": []}
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    after = nova.get_volume_compute(vid)
    assert (after["status"], after["attachments"]) == ("available", [])
    gone = api.call("GET", f"/attachments/{aid}", version=NOVA_ATTACH)
    fault(
        gone,
        404,
        "itemNotFound",
        f"Volume attachment could not be found with filter: attachment_id = {aid}.",
    )
    # Nova ignores a 404 on a repeated delete; Cinder answers it.
    again = nova.attachment_delete(aid)
    assert again.status_code == 404, again.text
    # The volume is free again: a second whole cycle, then a plain delete.
    second = nova.attach(vid, str(uuid.uuid4()), "compute-2")
    nova.detach(vid, second)
    assert api.states(vid) == ("available", "detached")
    assert api.call("DELETE", f"/volumes/{vid}").status_code == 202


def test_nova_calls_through_python_cinderclient(api: Api) -> None:
    """The calls of nova/volume/cinder.py made with the client Nova makes them with
    (``cinderclient.client.Client('3.44')``; ``volumes.get`` at 3.69 and 3.0;
    ``volumes.begin_detaching``) and Nova's reading of their results."""
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    at_344 = cinderclient_at(api.cluster, "u1", api.project, NOVA_ATTACH)
    at_369 = cinderclient_at(api.cluster, "u1", api.project, "3.69")
    at_30 = cinderclient_at(api.cluster, "u1", api.project, "3.0")
    volume = at_30.volumes.get(vid)
    assert (volume.status, volume.multiattach, volume.attachments) == ("available", False, [])
    # attachment_create: create() returns a dict.
    created = nova_translate(at_344.attachments.create(vid, None, instance))
    aid = created["id"]
    assert (created["status"], created["connection_info"]) == ("reserved", {})
    compute_view = at_369.volumes.get(vid)
    assert (compute_view.status, compute_view.shared_targets) == ("reserved", False)
    # attachment_update: update() returns a resource; Nova takes to_dict().
    connector = os_brick_connector("compute-cc") | {"mountpoint": "/dev/vdb"}
    updated = nova_translate(at_344.attachments.update(aid, connector).to_dict())
    info = updated["connection_info"]
    assert info["driver_volume_type"] == "local"
    assert info["data"]["device_path"] == str(api.image(vid))
    assert info["data"]["volume_id"] == vid
    assert info["instance"] == instance
    # attachment_get (refresh_connection_info) and attachment_get_all.
    shown = nova_translate(at_344.attachments.show(aid).to_dict())
    assert shown["connection_info"]["data"] == info["data"]
    listed = at_344.attachments.list(search_opts={"instance_id": instance})
    assert [a.id for a in listed] == [aid]
    assert at_344.attachments.list(search_opts={"volume_id": vid})[0].volume_id == vid
    # attachment_complete: the response only.
    assert at_344.attachments.complete(aid).status_code == 204
    attached = at_30.volumes.get(vid)
    assert attached.status == "in-use"
    assert [(a["server_id"], a["attachment_id"], a["device"]) for a in attached.attachments] == [
        (instance, aid, "/dev/vdb")
    ]
    at_30.volumes.begin_detaching(vid)
    assert at_369.volumes.get(vid).status == "detaching"
    at_344.attachments.delete(aid)
    final = at_369.volumes.get(vid)
    assert (final.status, final.attachments) == ("available", [])
    assert api.states(vid) == ("available", "detached")


def test_update_answers_the_attachment_as_read_before_the_update(api: Api) -> None:
    """Cinder's controller reads the attachment, has the manager connect it, sets only
    ``connection_info`` on what it read and answers that (cinder/api/v3/attachments.py
    ``update``; cinder/volume/api.py ``attachment_update``): still ``reserved``, no
    ``attached_at``, mode ``null``, although the row is ``attaching`` by then. Nova puts these
    into its connection_info (``_translate_attachment_ref``)."""
    vid = api.create_volume()
    nova = Nova(api)
    aid = nova.attachment_create(vid, str(uuid.uuid4())).json()["attachment"]["id"]
    updated = nova.attachment_update(aid, os_brick_connector("compute-1"), "/dev/vdb")
    assert updated.status_code == 200, updated.text
    assert [r["attach_status"] for r in api.rows(vid)] == ["attaching"]
    # Nova's rollback of a failed driver attach: the attaching attachment deleted.
    assert nova.attachment_delete(aid).status_code == 200
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    answer = updated.json()["attachment"]
    assert (answer["status"], answer["attached_at"], answer["attach_mode"]) == (
        "reserved",
        "",
        "null",
    )


def test_attachments_at_3_69_and_the_project_less_path(api: Api) -> None:
    """The same calls at a later microversion (3.54+ takes ``mode``) and on ``/v3/attachments``
    (Cinder's project-less v3 paths)."""
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    bare = f"{api.cluster.rest_url}/v3/attachments"
    body = {"attachment": {"volume_uuid": vid, "instance_uuid": instance, "mode": "ro"}}
    created = api.client.post(bare, headers=api.hdrs(version="3.69"), json=body)
    assert created.status_code == 200, created.text
    attachment = created.json()["attachment"]
    aid = attachment["id"]
    assert set(attachment) == DETAIL_KEYS
    assert (attachment["status"], attachment["attach_mode"], attachment["instance"]) == (
        "reserved",
        "ro",
        instance,
    )
    connector = os_brick_connector("compute-9") | {"mountpoint": "/dev/vdc"}
    updated = api.client.put(
        f"{bare}/{aid}",
        headers=api.hdrs(version="3.69"),
        json={"attachment": {"connector": connector}},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["attachment"]["connection_info"]["driver_volume_type"] == "local"
    # The attach mode given at create wins over the connector's (manager attachment_update).
    [row] = api.rows(vid)
    assert (row["attach_mode"], json.loads(row["connector"])["mode"]) == ("ro", "ro")
    completed = api.client.post(
        f"{bare}/{aid}/action", headers=api.hdrs(version="3.69"), json={"os-complete": None}
    )
    assert completed.status_code == 204, completed.text
    shown = api.client.get(f"{bare}/{aid}", headers=api.hdrs(version="3.69")).json()["attachment"]
    assert (shown["status"], shown["attach_mode"]) == ("attached", "ro")
    volume = api.volume(vid, version="3.69")
    assert (volume["status"], volume["shared_targets"]) == ("in-use", False)
    assert without_time(volume["attachments"]) == [
        volume_attachment(vid, aid, instance, None, "/dev/vdc")
    ]
    deleted = api.client.delete(f"{bare}/{aid}", headers=api.hdrs(version="3.69"))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"attachments": []}
    assert api.states(vid) == ("available", "detached")


def test_create_with_a_connector_reserves_and_connects_at_once(api: Api) -> None:
    """``POST /attachments`` with a connector: reserved and initialized in one call
    (``attachment_create`` calls the manager's ``attachment_update``)."""
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    connector = os_brick_connector("compute-3") | {"mountpoint": "/dev/vdd"}
    body = {"attachment": {"volume_uuid": vid, "instance_uuid": instance, "connector": connector}}
    created = api.call("POST", "/attachments", body, version=NOVA_ATTACH)
    assert created.status_code == 200, created.text
    attachment = created.json()["attachment"]
    aid = attachment["id"]
    assert set(attachment) == DETAIL_KEYS
    assert attachment["connection_info"] == expected_local_connection(api, vid, aid)
    assert api.states(vid) == ("attaching", "attaching")
    [row] = api.rows(vid)
    assert (row["attach_status"], row["attached_host"], row["mountpoint"]) == (
        "attaching",
        "compute-3",
        "/dev/vdd",
    )
    assert json.loads(row["connector"]) == connector
    assert (
        api.ok("POST", f"/attachments/{aid}/action", 204, {"os-complete": None}, version="3.44")
        is None
    )
    assert api.states(vid) == ("in-use", "attached")
    assert api.ok("DELETE", f"/attachments/{aid}", 200, version="3.44") == {"attachments": []}
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []


# --- lists, filters, isolation -----------------------------------------------------------------


def test_lists_filters_and_project_isolation(api: Api, cluster: Cluster) -> None:
    nova = Nova(api)
    first, second = api.create_volume(), api.create_volume()
    server_a, server_b = str(uuid.uuid4()), str(uuid.uuid4())
    attached = nova.attach(first, server_a, "compute-a")
    reserved = nova.attachment_create(second, server_b).json()["attachment"]["id"]

    def listed(path: str, **kw: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.ok("GET", path, 200, version=NOVA_ATTACH, **kw)[
            "attachments"
        ]
        return found

    summary = {a["id"]: a for a in listed("/attachments")}
    assert summary == {
        attached: {"id": attached, "status": "attached", "instance": server_a, "volume_id": first},
        reserved: {"id": reserved, "status": "reserved", "instance": server_b, "volume_id": second},
    }
    detail = {a["id"]: a for a in listed("/attachments/detail")}
    assert set(detail) == {attached, reserved}
    for entry in detail.values():
        assert set(entry) == DETAIL_KEYS
    assert detail[attached]["connection_info"] == expected_local_connection(api, first, attached)
    assert detail[reserved]["connection_info"] == {}
    assert detail[reserved]["attached_at"] == ""
    # Nova's attachment_get_all: instance_id and/or volume_id.
    assert [a["id"] for a in listed(f"/attachments?instance_id={server_a}")] == [attached]
    assert [a["id"] for a in listed(f"/attachments/detail?instance_id={server_b}")] == [reserved]
    assert [a["id"] for a in listed(f"/attachments?volume_id={second}")] == [reserved]
    assert listed(f"/attachments?instance_id={server_a}&volume_id={second}") == []
    assert [a["id"] for a in listed("/attachments?attach_status=attached")] == [attached]
    assert [a["id"] for a in listed("/attachments/detail?attach_status=reserved")] == [reserved]
    # `status` is an allowed filter but no column of Cinder's volume_attachment: Cinder's
    # is_valid_model_filters turns it into an empty list (cinder/db/api.py _attachment_get_all).
    assert listed("/attachments?status=attached") == []
    bad_request(
        api.call("GET", "/attachments?bogus=1", version=NOVA_ATTACH),
        "Invalid filters bogus are found in query options.",
    )
    # Another project sees none of them, and none by id (404 as for a missing one).
    other = Api(api.client, cluster, uuid.uuid4().hex)
    assert other.ok("GET", "/attachments/detail", 200, version=NOVA_ATTACH) == {"attachments": []}
    for method, path, body in (
        ("GET", f"/attachments/{attached}", None),
        ("PUT", f"/attachments/{reserved}", {"attachment": {"connector": {"host": "x"}}}),
        ("POST", f"/attachments/{attached}/action", {"os-complete": None}),
        ("DELETE", f"/attachments/{attached}", None),
    ):
        refused = other.call(method, path, body, version=NOVA_ATTACH)
        aid = attached if attached in path else reserved
        fault(
            refused,
            404,
            "itemNotFound",
            f"Volume attachment could not be found with filter: attachment_id = {aid}.",
        )
    refused = other.call(
        "POST",
        "/attachments",
        {"attachment": {"volume_uuid": first, "instance_uuid": server_a}},
        version=NOVA_ATTACH,
    )
    fault(refused, 404, "itemNotFound", f"Volume {first} could not be found.")
    # The admin: its own project's by default, every project's with all_tenants.
    admin_own = other.ok("GET", "/attachments", 200, version=NOVA_ATTACH, admin=True)
    assert admin_own == {"attachments": []}
    everything = api.ok("GET", "/attachments?all_tenants=1", 200, version=NOVA_ATTACH, admin=True)
    assert {attached, reserved} <= {a["id"] for a in everything["attachments"]}
    # A project reader reads, never writes (secure RBAC defaults; volume:attachment_create).
    reader = f"u2:{api.project}:reader"
    assert (
        len(api.ok("GET", "/attachments", 200, version=NOVA_ATTACH, token=reader)["attachments"])
        == 2
    )
    denied = api.call(
        "POST",
        "/attachments",
        {"attachment": {"volume_uuid": first}},
        version=NOVA_ATTACH,
        token=reader,
    )
    fault(
        denied, 403, "forbidden", "Policy doesn't allow volume:attachment_create to be performed."
    )
    # Nothing changed by the refusals.
    assert api.states(first) == ("in-use", "attached")
    assert api.states(second) == ("reserved", "detached")
    assert [r["id"] for r in api.rows(first)] == [attached]
    assert [r["id"] for r in api.rows(second)] == [reserved]
    nova.detach(first, attached)
    assert nova.attachment_delete(reserved).status_code == 200
    assert api.states(first) == api.states(second) == ("available", "detached")


# --- microversions -----------------------------------------------------------------------------


def test_attachments_answer_404_below_3_27_and_os_complete_below_3_44(api: Api) -> None:
    vid = api.create_volume()
    body = {"attachment": {"volume_uuid": vid, "instance_uuid": str(uuid.uuid4())}}
    for version in (None, "3.0", "3.26"):
        refused = api.call("POST", "/attachments", body, version=version)
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND)
        listed = api.call("GET", "/attachments", version=version)
        assert (listed.status_code, listed.json()) == (404, NOT_FOUND)
    assert api.rows(vid) == []
    assert api.states(vid) == ("available", "detached")
    created = api.call("POST", "/attachments", body, version="3.27")
    assert created.status_code == 200, created.text
    aid = created.json()["attachment"]["id"]
    connector = {"attachment": {"connector": os_brick_connector("compute-4")}}
    for method, path, payload in (
        ("GET", f"/attachments/{aid}", None),
        ("GET", "/attachments/detail", None),
        ("PUT", f"/attachments/{aid}", connector),
        ("DELETE", f"/attachments/{aid}", None),
    ):
        refused = api.call(method, path, payload, version="3.26")
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND), f"{method} {path}"
    assert [r["attach_status"] for r in api.rows(vid)] == ["reserved"]
    assert api.ok("PUT", f"/attachments/{aid}", 200, connector, version="3.27")
    # os-complete is 3.44's (NEW_ATTACH_COMPLETION): below it, as if it did not exist.
    for version in ("3.27", "3.43"):
        refused = api.call(
            "POST", f"/attachments/{aid}/action", {"os-complete": None}, version=version
        )
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND)
    assert api.states(vid) == ("attaching", "attaching")
    assert [r["attach_status"] for r in api.rows(vid)] == ["attaching"]
    assert (
        api.ok("POST", f"/attachments/{aid}/action", 204, {"os-complete": None}, version="3.44")
        is None
    )
    assert api.states(vid) == ("in-use", "attached")
    assert api.ok("DELETE", f"/attachments/{aid}", 200, version="3.27") == {"attachments": []}
    assert api.states(vid) == ("available", "detached")


# --- bodies ------------------------------------------------------------------------------------


def test_bad_bodies_are_cinders_400_and_leave_nothing(api: Api) -> None:
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    missing = str(uuid.uuid4())
    cases: list[tuple[str, Any, str]] = [
        ("3.44", {}, "'attachment' is a required property"),
        (
            "3.44",
            {"attachment": "x"},
            "Invalid input for field/attribute attachment. Value: x. 'x' is not of type 'object'",
        ),
        (
            "3.44",
            {"attachment": {}},
            "Invalid input for field/attribute attachment. Value: {}. 'volume_uuid' is a required property",
        ),
        (
            "3.44",
            {"attachment": {"volume_uuid": "nope"}},
            "Invalid input for field/attribute volume_uuid. Value: nope. 'nope' is not a 'uuid'",
        ),
        (
            "3.44",
            {"attachment": {"volume_uuid": vid, "instance_uuid": "i-1"}},
            "Invalid input for field/attribute instance_uuid. Value: i-1. 'i-1' is not a 'uuid'",
        ),
        (
            "3.44",
            {"attachment": {"volume_uuid": vid, "connector": "host"}},
            "Invalid input for field/attribute connector. Value: host. 'host' is not of type 'object', 'null'",
        ),
        (
            "3.44",
            # (keys in sorted order: Cinder's message shows them in the body's order)
            {"attachment": {"mode": "rw", "volume_uuid": vid}},
            f"Invalid input for field/attribute attachment. Value: {{'mode': 'rw', 'volume_uuid': '{vid}'}}. Additional properties are not allowed ('mode' was unexpected)",
        ),
        (
            "3.54",
            {"attachment": {"volume_uuid": vid, "mode": "rx"}},
            "Invalid input for field/attribute mode. Value: rx. 'rx' is not one of ['rw', 'ro']",
        ),
        (
            "3.44",
            {"attachment": {"volume_uuid": vid}, "extra": 1},
            "Additional properties are not allowed ('extra' was unexpected)",
        ),
    ]
    wrong = _mismatches(
        [
            (api.call("POST", "/attachments", body, version=version), message)
            for version, body, message in cases
        ]
    )
    fault(
        api.call("POST", "/attachments", {"attachment": {"volume_uuid": missing}}, version="3.44"),
        404,
        "itemNotFound",
        f"Volume {missing} could not be found.",
    )
    # Another volume for the updates, so that a wrongly accepted create spoils nothing there.
    made = api.rows(vid)
    vid = api.create_volume()
    aid = Nova(api).attachment_create(vid, instance).json()["attachment"]["id"]
    updates: list[tuple[Any, str]] = [
        ({}, "'attachment' is a required property"),
        (
            {"attachment": {}},
            "Invalid input for field/attribute attachment. Value: {}. 'connector' is a required property",
        ),
        (
            {"attachment": {"connector": {}}},
            "Invalid input for field/attribute connector. Value: {}. {} should be non-empty",
        ),
        (
            {"attachment": {"connector": None}},
            "Invalid input for field/attribute connector. Value: None. None is not of type 'object'",
        ),
        (
            {"attachment": {"connector": {"host": "h"}, "mode": "rw"}},
            "Invalid input for field/attribute attachment. Value: {'connector': {'host': 'h'}, 'mode': 'rw'}. Additional properties are not allowed ('mode' was unexpected)",
        ),
        (
            {"attachment": {"connector": {"host": "h"}}, "extra": 1},
            "Additional properties are not allowed ('extra' was unexpected)",
        ),
    ]
    wrong += _mismatches(
        [
            (api.call("PUT", f"/attachments/{aid}", body, version="3.44"), message)
            for body, message in updates
        ]
    )
    made += [r for r in api.rows(vid) if (r["attach_status"], r["connector"]) != ("reserved", None)]
    # Two keys in an action body (wsgi action_peek_json): nothing completed.
    wrong += _mismatches(
        [
            (
                api.call(
                    "POST",
                    f"/attachments/{aid}/action",
                    {"os-complete": None, "x": 1},
                    version="3.44",
                ),
                "Malformed request body",
            )
        ]
    )
    made += [r for r in api.rows(vid) if r["attach_status"] == "attached"]
    missing_attachment = str(uuid.uuid4())
    fault(
        api.call(
            "PUT",
            f"/attachments/{missing_attachment}",
            {"attachment": {"connector": {"host": "h"}}},
            version="3.44",
        ),
        404,
        "itemNotFound",
        f"Volume attachment could not be found with filter: attachment_id = {missing_attachment}.",
    )
    assert api.ok("DELETE", f"/attachments/{aid}", 200, version="3.44") == {"attachments": []}
    assert api.states(vid) == ("available", "detached")
    assert wrong == [], wrong
    assert made == []


def _mismatches(answers: list[tuple[httpx.Response, str]]) -> list[tuple[str, int, str]]:
    """The answers that are not Cinder's 400 with the message given: (message, status, body)."""
    return [
        (message, r.status_code, r.text)
        for r, message in answers
        if r.status_code != 400 or r.json() != {"badRequest": {"code": 400, "message": message}}
    ]


def test_legacy_action_bodies_as_cinders_schema(api: Api) -> None:
    vid = api.create_volume()
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"os-attach": {"host_name": "h"}},
            "Invalid input for field/attribute os-attach. Value: {'host_name': 'h'}. 'mountpoint' is a required property",
        ),
        (
            {"os-attach": {"mountpoint": "/dev/vdb"}},
            "Invalid input for field/attribute os-attach. Value: {'mountpoint': '/dev/vdb'}. {'mountpoint': '/dev/vdb'} is not valid under any of the given schemas",
        ),
        (
            {"os-attach": {"mountpoint": "/dev/vdb", "host_name": "h", "mode": "rx"}},
            "Invalid input for field/attribute mode. Value: rx. 'rx' is not one of ['rw', 'ro']",
        ),
        (
            {"os-attach": {"mountpoint": "", "host_name": "h"}},
            "Invalid input for field/attribute mountpoint. Value: . '' should be non-empty",
        ),
        (
            {"os-attach": {"mountpoint": "/dev/vdb", "instance_uuid": "i-1"}},
            "Invalid input for field/attribute instance_uuid. Value: i-1. 'i-1' is not a 'uuid'",
        ),
        (
            {"os-initialize_connection": {}},
            "Invalid input for field/attribute os-initialize_connection. Value: {}. 'connector' is a required property",
        ),
        (
            {"os-initialize_connection": {"connector": None}},
            "Invalid input for field/attribute connector. Value: None. None is not of type 'object', 'string'",
        ),
        (
            {"os-terminate_connection": {}},
            "Invalid input for field/attribute os-terminate_connection. Value: {}. 'connector' is a required property",
        ),
        (
            {"os-force_detach": {"attachment_id": 1}},
            "Invalid input for field/attribute attachment_id. Value: 1. 1 is not of type 'string', 'null'",
        ),
    ]
    for body, message in cases:
        bad_request(api.action(vid, body, admin="os-force_detach" in body), message)
    assert api.rows(vid) == []
    assert api.states(vid) == ("available", "detached")


# --- the legacy sequences ----------------------------------------------------------------------


def test_terraform_volume_attach_v3_legacy_sequence(api: Api) -> None:
    """``openstack_blockstorage_volume_attach_v3`` (gophercloud ``volumeactions``, no
    microversion): Create = os-initialize_connection, os-attach (host_name, mountpoint), wait
    for ``in-use``, GET the volume and find the attachment whose ``host_name`` is ours (shown to
    admins only, so Terraform runs as one); Delete = os-terminate_connection, os-detach."""
    vid = api.create_volume()
    host = "tf-host-1"
    # gophercloud InitializeConnectionOpts: only the fields set (omitempty).
    connector = {
        "host": host,
        "ip": "192.0.2.20",
        "initiator": "iqn.1993-08.org.debian:01:tf",
        "multipath": False,
        "os_type": "linux",
        "platform": "x86_64",
    }
    initialized = api.action(
        vid, {"os-initialize_connection": {"connector": connector}}, admin=True
    )
    assert initialized.status_code == 200, initialized.text
    info = initialized.json()
    assert set(info) == {"connection_info"}
    assert info["connection_info"] == {
        "driver_volume_type": "local",
        "data": {
            "device_path": str(api.image(vid)),
            "volume_id": vid,
            "qos_specs": None,
            "access_mode": "rw",
            "encrypted": False,
            "cacheable": False,
            "enforce_multipath": False,
        },
        "enforce_multipath": False,
    }
    # The legacy connection records nothing.
    assert api.rows(vid) == []
    assert api.states(vid) == ("available", "detached")
    attached = api.action(
        vid, {"os-attach": {"mountpoint": "/dev/sdb", "host_name": host}}, admin=True
    )
    assert attached.status_code == 202, attached.text
    assert attached.content == b""
    shown = api.wait(vid, "in-use")
    found = [a["attachment_id"] for a in shown["attachments"] if a["host_name"] == host]
    assert len(found) == 1, shown["attachments"]
    aid = found[0]
    assert without_time(shown["attachments"]) == [
        volume_attachment(vid, aid, None, host, "/dev/sdb")
    ]
    [row] = api.rows(vid)
    assert (
        row["id"],
        row["instance_uuid"],
        row["attach_status"],
        row["attached_host"],
        row["attach_mode"],
    ) == (
        aid,
        None,
        "attached",
        host,
        "rw",
    )
    assert api.states(vid) == ("in-use", "attached")
    # The attachments API shows the legacy attachment too.
    listed = api.ok("GET", f"/attachments?volume_id={vid}", 200, version="3.44", admin=True)
    assert listed == {
        "attachments": [{"id": aid, "status": "attached", "instance": None, "volume_id": vid}]
    }

    terminated = api.action(vid, {"os-terminate_connection": {"connector": connector}}, admin=True)
    assert terminated.status_code == 202, terminated.text
    assert api.states(vid) == ("in-use", "attached")
    detached = api.action(vid, {"os-detach": {"attachment_id": aid}}, admin=True)
    assert detached.status_code == 202, detached.text
    assert api.wait(vid, "available")["attachments"] == []
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []


def test_nova_legacy_sequence_with_reserve_and_begin_detaching(api: Api) -> None:
    """Nova's pre-3.44 flow (``_legacy_volume_attach``, cinderclient bodies): os-reserve,
    os-initialize_connection, os-attach (instance_uuid, mountpoint, mode); os-begin_detaching,
    os-terminate_connection, os-detach."""
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    connector = os_brick_connector("compute-5")
    assert api.action(vid, {"os-reserve": None}).status_code == 202
    assert api.states(vid) == ("attaching", "detached")
    bad_request(
        api.action(vid, {"os-reserve": None}),
        "Invalid volume: Volume status must be available to reserve, but the status is attaching.",
    )
    initialized = api.action(vid, {"os-initialize_connection": {"connector": connector}})
    assert initialized.status_code == 200, initialized.text
    assert initialized.json()["connection_info"]["data"]["device_path"] == str(api.image(vid))
    assert api.states(vid) == ("attaching", "detached")
    attach = {"os-attach": {"mountpoint": "/dev/vdb", "mode": "rw", "instance_uuid": instance}}
    assert api.action(vid, attach).status_code == 202
    shown = api.wait(vid, "in-use")
    [entry] = shown["attachments"]
    aid = entry["attachment_id"]
    assert without_time(shown["attachments"]) == [
        volume_attachment(vid, aid, instance, None, "/dev/vdb")
    ]
    assert api.states(vid) == ("in-use", "attached")
    # Detach, rolled back once as Nova does when the guest refuses.
    assert api.action(vid, {"os-begin_detaching": None}).status_code == 202
    assert api.states(vid) == ("detaching", "attached")
    assert api.action(vid, {"os-roll_detaching": None}).status_code == 202
    assert api.states(vid) == ("in-use", "attached")
    assert api.action(vid, {"os-begin_detaching": None}).status_code == 202
    assert api.action(vid, {"os-terminate_connection": {"connector": connector}}).status_code == 202
    # terminate_connection unreserves only an `attaching` volume: still detaching.
    assert api.states(vid) == ("detaching", "attached")
    assert api.action(vid, {"os-detach": {"attachment_id": aid}}).status_code == 202
    assert api.wait(vid, "available")["attachments"] == []
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []


# --- failure paths -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["creating", "maintenance"])
def test_attach_while_not_available_is_refused_and_changes_nothing(api: Api, status: str) -> None:
    vid = api.create_volume()
    assert api.action(vid, {"os-reset_status": {"status": status}}, admin=True).status_code == 202
    refused = Nova(api).attachment_create(vid, str(uuid.uuid4()))
    bad_request(
        refused,
        f"Invalid volume: Volume {vid} status must be available or downloading to reserve, "
        f"but the current status is {status}.",
    )
    bad_request(
        api.action(vid, {"os-reserve": None}),
        f"Invalid volume: Volume status must be available to reserve, but the status is {status}.",
    )
    assert api.rows(vid) == []
    assert api.states(vid) == (status, "detached")
    assert (
        api.action(vid, {"os-reset_status": {"status": "available"}}, admin=True).status_code == 202
    )
    aid = Nova(api).attach(vid, str(uuid.uuid4()), "compute-6")
    assert api.states(vid) == ("in-use", "attached")
    assert Nova(api).attachment_delete(aid).status_code == 200
    assert api.states(vid) == ("available", "detached")


def test_attach_right_after_create_is_refused_until_available(api: Api) -> None:
    """Nova's boot-from-volume creates and attaches at once: while the volume is still
    ``creating`` the reservation is refused (400), never half made."""
    created = api.ok("POST", "/volumes", 202, {"volume": {"size": 1}})["volume"]
    vid = created["id"]
    answer = Nova(api).attachment_create(vid, str(uuid.uuid4()))
    if answer.status_code == 400:
        bad_request(
            answer,
            f"Invalid volume: Volume {vid} status must be available or downloading to reserve, "
            "but the current status is creating.",
        )
        assert api.rows(vid) == []
    else:
        assert answer.status_code == 200, answer.text
        assert [r["attach_status"] for r in api.rows(vid)] == ["reserved"]
        assert Nova(api).attachment_delete(answer.json()["attachment"]["id"]).status_code == 200
    api.wait(vid, "available")
    assert api.states(vid) == ("available", "detached")


def test_attach_to_an_error_volume_is_refused(api: Api) -> None:
    vid = api.create_volume()
    instance = str(uuid.uuid4())
    aid = Nova(api).attachment_create(vid, instance).json()["attachment"]["id"]
    assert api.action(vid, {"os-reset_status": {"status": "error"}}, admin=True).status_code == 202
    bad_request(
        Nova(api).attachment_create(vid, str(uuid.uuid4())),
        "Invalid volume: Volume attachments can not be created if the volume is in an error "
        f"state. The Volume {vid} currently has a status of: error ",
    )
    # Updating an attachment of an error volume: ResourceConflict (409).
    conflict = Nova(api).attachment_update(aid, os_brick_connector("compute-7"), "/dev/vdb")
    assert conflict.status_code == 409, conflict.text
    [row] = api.rows(vid)
    assert (row["attach_status"], row["connector"]) == ("reserved", None)
    # Deleting the attachment recomputes the status from what is left (volume_detached).
    assert Nova(api).attachment_delete(aid).status_code == 200
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    # The message last (the states above hold whatever it says): ResourceConflict's own.
    fault(
        conflict,
        409,
        "conflictingRequest",
        "Resource conflict: Volume attachments can not be updated if the volume is in an error "
        f"state. The Volume {vid} currently has a status of: error ",
    )


def test_second_attachment_of_a_non_multiattach_volume(api: Api) -> None:
    nova = Nova(api)
    vid = api.create_volume()
    server, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = nova.attachment_create(vid, server).json()["attachment"]["id"]
    message = (
        f"Invalid volume: Volume {vid} status must be available or downloading to reserve, but "
        "the current status is {}."
    )
    bad_request(nova.attachment_create(vid, other), message.format("reserved"))
    assert (
        nova.attachment_update(first, os_brick_connector("compute-8"), "/dev/vdb").status_code
        == 200
    )
    bad_request(nova.attachment_create(vid, other), message.format("attaching"))
    assert nova.attachment_complete(first).status_code == 204
    bad_request(nova.attachment_create(vid, other), message.format("in-use"))
    bad_request(
        api.action(vid, {"os-reserve": None}),
        "Invalid volume: Volume status must be available to reserve, but the status is in-use.",
    )
    attach = {"os-attach": {"mountpoint": "/dev/vdc", "instance_uuid": other}}
    refused = api.action(vid, attach)
    assert refused.status_code == 400, refused.text
    assert "volume is already attached and multiple attachments are not enabled" in refused.text
    assert [r["id"] for r in api.rows(vid)] == [first]
    assert api.states(vid) == ("in-use", "attached")
    # The same server may have a second one (live migration, LP #1694530): the volume stays.
    migrating = nova.attachment_create(vid, server)
    assert migrating.status_code == 200, migrating.text
    second = migrating.json()["attachment"]["id"]
    assert migrating.json()["attachment"]["status"] == "reserved"
    assert api.states(vid) == ("in-use", "attached")
    assert [r["attach_status"] for r in api.rows(vid)] == ["attached", "reserved"]
    remaining = nova.attachment_delete(first)
    assert remaining.status_code == 200, remaining.text
    assert remaining.json() == {
        "attachments": [{"id": second, "status": "reserved", "instance": server, "volume_id": vid}]
    }
    # Only a reservation left: the volume is reserved (volume_detached's status from it).
    assert api.states(vid) == ("reserved", "reserved")
    assert nova.attachment_delete(second).json() == {"attachments": []}
    assert api.states(vid) == ("available", "detached")


def test_failed_connection_is_rolled_back_by_deleting_the_attachment(api: Api) -> None:
    """The driver cannot connect (its image is gone): the update answers Cinder's 500, the
    attachment stays reserved with no connector, and Nova's rollback (attachment_delete)
    leaves the volume available."""
    nova = Nova(api)
    vid = api.create_volume()
    aid = nova.attachment_create(vid, str(uuid.uuid4())).json()["attachment"]["id"]
    api.image(vid).unlink()
    failed = nova.attachment_update(aid, os_brick_connector("compute-10"), "/dev/vdb")
    assert failed.status_code == 500, failed.text
    assert set(failed.json()) == {"computeFault"}
    message = failed.json()["computeFault"]["message"]
    [row] = api.rows(vid)
    assert (row["attach_status"], row["connector"], row["attached_host"]) == (
        "reserved",
        None,
        None,
    )
    assert (
        api.ok("GET", f"/attachments/{aid}", 200, version="3.44")["attachment"]["connection_info"]
        == {}
    )
    assert api.states(vid) == ("reserved", "detached")
    assert nova.attachment_delete(aid).json() == {"attachments": []}
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    # The message last: the API's wrapping of the manager's VolumeBackendAPIException.
    assert message.startswith(
        "Unable to update attachment (Bad or unexpected response from the storage volume "
        "backend API: Driver initialize connection failed (error: "
    ), message


def test_failed_legacy_connection_is_rolled_back_by_terminate_connection(api: Api) -> None:
    """Nova's legacy rollback: initialize_connection fails (Cinder's 500 "Unable to fetch
    connection information from backend."), Nova terminates the connection, which unreserves."""
    vid = api.create_volume()
    connector = os_brick_connector("compute-11")
    assert api.action(vid, {"os-reserve": None}).status_code == 202
    api.image(vid).unlink()
    failed = api.action(vid, {"os-initialize_connection": {"connector": connector}})
    fault(failed, 500, "computeFault", "Unable to fetch connection information from backend.")
    assert api.states(vid) == ("attaching", "detached")
    assert api.action(vid, {"os-terminate_connection": {"connector": connector}}).status_code == 202
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    # os-unreserve on a reserved volume (Nova's other rollback) also ends available.
    assert api.action(vid, {"os-reserve": None}).status_code == 202
    assert api.action(vid, {"os-unreserve": None}).status_code == 202
    assert api.states(vid) == ("available", "detached")


def test_roll_detaching_and_unreserve_keep_an_attached_volume_in_use(api: Api) -> None:
    nova = Nova(api)
    vid = api.create_volume(api.multiattach_type())
    aid = nova.attach(vid, str(uuid.uuid4()), "compute-12")
    assert nova.begin_detaching(vid).status_code == 202
    assert api.states(vid) == ("detaching", "attached")
    assert api.action(vid, {"os-roll_detaching": None}).status_code == 202
    assert api.states(vid) == ("in-use", "attached")
    # A multiattach volume in-use may be reserved again; unreserving finds its attachment.
    assert api.action(vid, {"os-reserve": None}).status_code == 202
    assert api.states(vid) == ("attaching", "attached")
    assert api.action(vid, {"os-unreserve": None}).status_code == 202
    assert api.states(vid) == ("in-use", "attached")
    assert [r["id"] for r in api.rows(vid)] == [aid]
    nova.detach(vid, aid)
    assert api.states(vid) == ("available", "detached")


@pytest.mark.parametrize("reset_first", [False, True])
def test_force_detach_of_an_attachment_whose_host_is_gone(api: Api, reset_first: bool) -> None:
    """The compute host of an attachment is gone: the admin force-detaches it (as Tempest's
    test_force_detach_volume, after resetting the volume to ``error``, or straight from
    ``in-use``); the volume ends available with no attachment."""
    nova = Nova(api)
    vid = api.create_volume()
    aid = nova.attach(vid, str(uuid.uuid4()), "compute-gone")
    stored = json.loads(api.rows(vid)[0]["connector"])
    assert stored["host"] == "compute-gone"
    body = {"os-force_detach": {"attachment_id": aid, "connector": None if reset_first else stored}}
    forbidden = api.action(vid, body)
    fault(
        forbidden,
        403,
        "forbidden",
        "Policy doesn't allow volume_extension:volume_admin_actions:force_detach to be performed.",
    )
    assert api.states(vid) == ("in-use", "attached")
    if reset_first:
        assert (
            api.action(vid, {"os-reset_status": {"status": "error"}}, admin=True).status_code == 202
        )
        assert api.states(vid) == ("error", "attached")
    forced = api.action(vid, body, admin=True)
    assert forced.status_code == 202, forced.text
    assert forced.content == b""
    shown = api.wait(vid, "available")
    assert shown["attachments"] == []
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    gone = api.call("GET", f"/attachments/{aid}", version="3.44")
    assert gone.status_code == 404
    # Attachable again.
    again = nova.attach(vid, str(uuid.uuid4()), "compute-new")
    nova.detach(vid, again)
    assert api.states(vid) == ("available", "detached")


def test_detach_without_attachment_id_of_a_volume_with_several(api: Api) -> None:
    """Which of two attachments? Cinder refuses before asking the manager
    (``attachment_deletion_allowed``, bug #2004555: no single attachment to check)."""
    nova = Nova(api)
    vid = api.create_volume(api.multiattach_type())
    first = nova.attach(vid, str(uuid.uuid4()), "compute-13")
    second = nova.attach(vid, str(uuid.uuid4()), "compute-14")
    conflict = "Detach volume from instance  using the Compute API"
    refused = [
        api.action(vid, {"os-detach": None}),
        api.action(vid, {"os-force_detach": {}}, admin=True),
    ]
    assert api.states(vid) == ("in-use", "attached")
    assert len(api.rows(vid)) == 2
    assert api.action(vid, {"os-detach": {"attachment_id": first}}).status_code == 202
    assert [r["id"] for r in api.rows(vid)] == [second]
    assert api.states(vid) == ("in-use", "attached")
    assert (
        api.action(vid, {"os-force_detach": {"attachment_id": second}}, admin=True).status_code
        == 202
    )
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    # The refusals' answers last (the states above hold whatever they said).
    for response in refused:
        fault(response, 409, "conflictingRequest", conflict)


def test_reset_status_detached_removes_the_attachments(api: Api) -> None:
    """The admin's way out of any stuck state (admin_actions ``_reset_status``: an
    ``attach_status`` of ``detached`` deletes every attachment, ``volume_detached`` sets the
    status); ``in-use`` is refused only to a volume without attachments."""
    nova = Nova(api)
    vid = api.create_volume(api.multiattach_type())
    nova.attach(vid, str(uuid.uuid4()), "compute-15")
    nova.attachment_create(vid, str(uuid.uuid4()))
    assert api.action(vid, {"os-reset_status": {"status": "error"}}, admin=True).status_code == 202
    assert api.action(vid, {"os-reset_status": {"status": "in-use"}}, admin=True).status_code == 202
    assert api.states(vid) == ("in-use", "attached")
    reset = {"os-reset_status": {"status": "available", "attach_status": "detached"}}
    assert api.action(vid, reset, admin=True).status_code == 202
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    assert api.volume(vid)["attachments"] == []
    bad_request(
        api.action(vid, {"os-reset_status": {"status": "in-use"}}, admin=True),
        "Cannot reset-state to in-use because volume does not have any attachments.",
    )


def test_second_connection_of_a_non_multiattach_volume_is_a_conflict(api: Api) -> None:
    """A second attachment of the same server may be reserved, but not connected while the
    first one is (cinder/volume/api.py ``attachment_update``: "duplicate connectors",
    ResourceConflict, bug #1833736); refused, it changes nothing."""
    nova = Nova(api)
    vid = api.create_volume()
    server = str(uuid.uuid4())
    first = nova.attach(vid, server, "compute-src")
    second = nova.attachment_create(vid, server).json()["attachment"]["id"]
    conflict = nova.attachment_update(second, os_brick_connector("compute-dest"), "/dev/vdb")
    assert conflict.status_code == 409, conflict.text
    assert [(r["id"], r["attach_status"]) for r in api.rows(vid)] == [
        (first, "attached"),
        (second, "reserved"),
    ]
    assert api.rows(vid)[1]["connector"] is None
    assert api.states(vid) == ("in-use", "attached")
    assert nova.attachment_delete(second).status_code == 200
    assert api.states(vid) == ("in-use", "attached")
    nova.detach(vid, first)
    assert api.states(vid) == ("available", "detached")
    fault(
        conflict,
        409,
        "conflictingRequest",
        f"Resource conflict: duplicate connectors detected on volume {vid}",
    )


def test_attached_volume_is_not_deletable_until_detached(api: Api) -> None:
    """Cinder's delete wants a detached volume in a deletable status: neither reserved,
    attaching nor in-use (cinder/volume/api.py ``delete``'s expected values)."""
    nova = Nova(api)
    vid = api.create_volume()
    not_deletable = (
        "Invalid volume: Volume status must be available or error or error_restoring or "
        "error_extending or error_managing and must not be migrating, attached, belong to a group, "
        "have snapshots, awaiting a transfer, or be disassociated from snapshots after volume "
        "transfer."
    )
    aid = nova.attachment_create(vid, str(uuid.uuid4())).json()["attachment"]["id"]
    bad_request(api.call("DELETE", f"/volumes/{vid}"), not_deletable)
    assert api.states(vid) == ("reserved", "detached")
    assert (
        nova.attachment_update(aid, os_brick_connector("compute-16"), "/dev/vdb").status_code == 200
    )
    bad_request(api.call("DELETE", f"/volumes/{vid}"), not_deletable)
    assert nova.attachment_complete(aid).status_code == 204
    bad_request(api.call("DELETE", f"/volumes/{vid}"), not_deletable)
    assert api.states(vid) == ("in-use", "attached")
    assert [r["id"] for r in api.rows(vid)] == [aid]
    nova.detach(vid, aid)
    assert api.call("DELETE", f"/volumes/{vid}").status_code == 202


# --- concurrency -------------------------------------------------------------------------------

RESERVE_REFUSED = re.compile(
    r"^Invalid volume: Volume [0-9a-f-]{36} status must be available or in-use or downloading to "
    r"reserve, but the current status is [a-z_-]+\.$"
)
CYCLES = 20


class Watcher:
    """Reads the volume row and its attachment rows in one statement (one snapshot) over
    and over, and keeps what breaks Cinder's invariants: ``available`` only when detached with
    no attachment attached; ``in-use`` only when attached with one attached at least."""

    def __init__(self, cluster: Cluster, volume_id: str) -> None:
        self.cluster = cluster
        self.volume_id = volume_id
        self.stop = threading.Event()
        self.seen: list[tuple[str, str, str]] = []
        self.broken: list[tuple[str, str, str]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # The volume's row first, then one row per attachment (SQL both engines read).
        query = (
            "select 0, v.status, v.attach_status from volumes v where v.id = ? "
            "union all select 1, a.attach_status, '' from volume_attachment a "
            "where a.volume_id = ? order by 1"
        )
        while not self.stop.is_set():
            found = db_rows(self.cluster, query, self.volume_id, self.volume_id)
            (_, status, attach_status), attachments = found[0], found[1:]
            statuses = sorted(row[1] for row in attachments)
            rows = ",".join(statuses)
            sample = (status, attach_status, rows)
            self.seen.append(sample)
            if status == "available" and (attach_status != "detached" or "attached" in statuses):
                self.broken.append(sample)
            if status == "in-use" and (attach_status != "attached" or "attached" not in statuses):
                self.broken.append(sample)
            time.sleep(0.005)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _retry_reserve(call: Callable[[], httpx.Response], deadline: float) -> httpx.Response:
    """Cinder refuses a reservation while another one holds the volume (``reserved`` and
    ``attaching`` are not in ``_attachment_reserve``'s expected statuses): retry those, only."""
    while True:
        response = call()
        if response.status_code != 400:
            return response
        message = response.json()["badRequest"]["message"]
        assert RESERVE_REFUSED.match(message), message
        assert time.monotonic() < deadline, "never reserved"
        time.sleep(0.01)


def test_concurrent_attach_detach_cycles_on_a_multiattach_volume(api: Api) -> None:
    vid = api.create_volume(api.multiattach_type())
    assert api.volume(vid)["multiattach"] is True
    deadline = time.monotonic() + 240.0

    def attach(index: int) -> tuple[str, str]:
        instance = str(uuid.uuid4())
        with httpx.Client(timeout=60.0) as client:
            nova = Nova(Api(client, api.cluster, api.project))
            created = _retry_reserve(lambda: nova.attachment_create(vid, instance), deadline)
            assert created.status_code == 200, created.text
            aid: str = created.json()["attachment"]["id"]
            updated = nova.attachment_update(
                aid, os_brick_connector(f"compute-{index}"), "/dev/vdb"
            )
            assert updated.status_code == 200, updated.text
            assert updated.json()["attachment"]["connection_info"]["attachment_id"] == aid
            assert nova.attachment_complete(aid).status_code == 204
        return aid, instance

    def delete(aid: str) -> None:
        with httpx.Client(timeout=60.0) as client:
            deleted = Nova(Api(client, api.cluster, api.project)).attachment_delete(aid)
            assert deleted.status_code == 200, deleted.text
            for entry in deleted.json()["attachments"]:
                assert set(entry) == SUMMARY_KEYS and entry["volume_id"] == vid
                assert entry["id"] != aid

    def cycle(index: int) -> None:
        aid, _ = attach(index)
        delete(aid)

    def checkpoint(expected: dict[str, str]) -> None:
        """``expected``: attachment id -> instance, all attached."""
        rows = api.rows(vid)
        assert {r["id"]: r["instance_uuid"] for r in rows} == expected
        assert {r["attach_status"] for r in rows} <= {"attached"}
        shown = api.volume(vid, version="3.69", admin=True)
        listed = api.ok("GET", f"/attachments?volume_id={vid}", 200, version="3.44")["attachments"]
        assert {a["id"] for a in listed} == set(expected)
        assert {a["attachment_id"]: a["server_id"] for a in shown["attachments"]} == expected
        if expected:
            assert (shown["status"], api.states(vid)) == ("in-use", ("in-use", "attached"))
            hosts = {r["attached_host"] for r in rows}
            assert len(hosts) == len(expected) and all(h.startswith("compute-") for h in hosts)
        else:
            assert (shown["status"], api.states(vid)) == ("available", ("available", "detached"))

    with Watcher(api.cluster, vid) as watcher, ThreadPoolExecutor(max_workers=CYCLES) as pool:
        # Phase 1: 20 attaches at once.
        attached = dict(pool.map(attach, range(CYCLES)))
        checkpoint(attached)
        # Phase 2: half of them detach while 10 more whole cycles run.
        leaving = list(attached)[: CYCLES // 2]
        futures = [pool.submit(delete, aid) for aid in leaving]
        futures += [pool.submit(cycle, CYCLES + i) for i in range(CYCLES // 2)]
        for future in futures:
            future.result()
        staying = {aid: attached[aid] for aid in list(attached)[CYCLES // 2 :]}
        checkpoint(staying)
        # Phase 3: the rest detach at once.
        for future in [pool.submit(delete, aid) for aid in staying]:
            future.result()
        checkpoint({})
    assert watcher.seen, "the watcher read nothing"
    assert watcher.broken == [], watcher.broken[:10]
    assert api.states(vid) == ("available", "detached")
    assert api.rows(vid) == []
    assert api.call("DELETE", f"/volumes/{vid}").status_code == 202
