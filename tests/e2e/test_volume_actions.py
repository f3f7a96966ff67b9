"""Volume actions (``POST /v3/{project}/volumes/{id}/action``) over REST through Envoy against
the real processes, on the file driver: each action's success and its refusals with Cinder's
statuses and messages, the rows and quota usages they leave, the image on disk, and
``cinder extend`` with the real python-cinderclient. (RBD: ``test_volume_actions_rbd``.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client_helpers import CinderCli
from tests.e2e.cluster import Cluster
from tests.e2e.fleet import Fleet
from tests.e2e.helpers import db_rows, headers, wait_for_404, wait_for_status

GIB = 1024**3
ADMIN = "admin"


class Api:
    """One project's REST calls (as its member, or as the cloud's admin)."""

    def __init__(self, client: httpx.Client, cluster: Cluster, project: str) -> None:
        self.client = client
        self.cluster = cluster
        self.project = project
        self.base = f"{cluster.rest_url}/v3/{project}"

    def hdrs(self, admin: bool = False, version: str | None = None) -> dict[str, str]:
        return headers(self.project, ADMIN if admin else "u1", version)

    def create(self, size: int = 1, volume_type: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"size": size}
        if volume_type is not None:
            body["volume_type"] = volume_type
        created = self.client.post(
            f"{self.base}/volumes", headers=self.hdrs(), json={"volume": body}
        )
        assert created.status_code == 202, created.text
        return self.wait(created.json()["volume"]["id"], "available")

    def wait(self, volume_id: str, status: str) -> dict[str, Any]:
        return wait_for_status(
            self.client, f"{self.base}/volumes/{volume_id}", self.hdrs(admin=True), status
        )

    def show(self, volume_id: str) -> dict[str, Any]:
        shown = self.client.get(f"{self.base}/volumes/{volume_id}", headers=self.hdrs(True))
        assert shown.status_code == 200, shown.text
        volume: dict[str, Any] = shown.json()["volume"]
        return volume

    def action(
        self,
        volume_id: str,
        body: dict[str, Any],
        admin: bool = False,
        version: str | None = None,
    ) -> httpx.Response:
        return self.client.post(
            f"{self.base}/volumes/{volume_id}/action",
            headers=self.hdrs(admin, version),
            json=body,
        )

    def usage(self, resource: str) -> tuple[int, int]:
        rows = db_rows(
            self.cluster,
            "select in_use, reserved from quota_usages where project_id = ? and resource = ?",
            self.project,
            resource,
        )
        return (rows[0][0], rows[0][1]) if rows else (0, 0)

    def set_quota(self, **limits: int) -> None:
        updated = self.client.put(
            f"{self.base}/os-quota-sets/{self.project}",
            headers=self.hdrs(admin=True),
            json={"quota_set": limits},
        )
        assert updated.status_code == 200, updated.text


@pytest.fixture
def api(cluster: Cluster, project: str) -> Iterator[Api]:
    with httpx.Client(timeout=30.0) as client:
        yield Api(client, cluster, project)


def bad_request(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"badRequest": {"code": 400, "message": message}}


def _image(cluster: Cluster, volume_id: str) -> Path:
    found = [p for p in (cluster.data_dir / "volumes").rglob(f"volume-{volume_id}*") if p.is_file()]
    assert len(found) == 1, found
    return found[0]


# --- os-extend -------------------------------------------------------------------------------


def test_extend_grows_the_image_and_commits_the_quota_once(api: Api) -> None:
    volume = api.create(size=1)
    assert api.usage("gigabytes") == (1, 0)
    extended = api.action(volume["id"], {"os-extend": {"new_size": 3}})
    assert extended.status_code == 202, extended.text
    assert extended.content == b""
    shown = api.wait(volume["id"], "available")
    assert shown["size"] == 3
    assert _image(api.cluster, volume["id"]).stat().st_size == 3 * GIB
    assert api.usage("gigabytes") == (3, 0)
    assert api.usage("gigabytes___DEFAULT__") == (3, 0)
    assert api.usage("volumes") == (1, 0)
    assert db_rows(
        api.cluster,
        "select extend_to_gb, pending_reservations, previous_status from volumes where id = ?",
        volume["id"],
    ) == [(None, "", "available")]
    assert db_rows(
        api.cluster, "select count(*) from reservations where project_id = ?", api.project
    ) == [(0,)]
    # A string of digits is a size too (Cinder's volume_size schema).
    assert api.action(volume["id"], {"os-extend": {"new_size": "4"}}).status_code == 202
    assert api.wait(volume["id"], "available")["size"] == 4
    assert api.usage("gigabytes") == (4, 0)


def test_extend_refusals_change_nothing(api: Api) -> None:
    volume = api.create(size=2)
    vid = volume["id"]
    bad_request(
        api.action(vid, {"os-extend": {"new_size": 2}}),
        "Invalid input received: New size for extend must be greater than current size. "
        "(current: 2, extended: 2).",
    )
    bad_request(
        api.action(vid, {"os-extend": {"new_size": "abc"}}),
        "Invalid input for field/attribute new_size. Value: abc. 'abc' does not match '^[0-9]+$'",
    )
    bad_request(
        api.action(vid, {"os-extend": {"new_size": None}}),
        "Invalid input for field/attribute new_size. Value: None. None is not of type "
        "'integer', 'string'",
    )
    bad_request(
        api.action(vid, {"os-extend": {}}),
        "Invalid input for field/attribute os-extend. Value: {}. 'new_size' is a required property",
    )
    bad_request(
        api.action(vid, {"os-extend": {"new_size": 3, "x": 1}}),
        "Invalid input for field/attribute os-extend. Value: {'new_size': 3, 'x': 1}. "
        "Additional properties are not allowed ('x' was unexpected)",
    )
    missing = str(uuid.uuid4())
    gone = api.action(missing, {"os-extend": {"new_size": 3}})
    assert gone.status_code == 404
    assert gone.json()["itemNotFound"]["message"] == f"Volume {missing} could not be found."
    # Over the gigabytes quota: 413, the volume and the usage as they were.
    api.set_quota(gigabytes=3)
    over = api.action(vid, {"os-extend": {"new_size": 4}})
    assert over.status_code == 413, over.text
    assert over.json()["overLimit"]["message"] == (
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota "
        "is 3G and 2G has been consumed."
    )
    api.set_quota(gigabytes=-1, per_volume_gigabytes=3)
    limited = api.action(vid, {"os-extend": {"new_size": 4}})
    assert limited.status_code == 413
    assert limited.json()["overLimit"]["message"] == (
        "Requested volume size 4G is larger than maximum allowed limit 3G."
    )
    shown = api.show(vid)
    assert (shown["status"], shown["size"]) == ("available", 2)
    assert api.usage("gigabytes") == (2, 0)
    # Not available: Cinder's message names the status it expects.
    assert api.action(vid, {"os-reset_status": {"status": "error"}}, admin=True).status_code == 202
    bad_request(
        api.action(vid, {"os-extend": {"new_size": 3}}),
        f"Invalid volume: Volume {vid} status must be '{{'status': 'available'}}' to extend, "
        "currently error.",
    )
    assert api.usage("gigabytes") == (2, 0)


def test_extend_in_use_from_3_42(api: Api) -> None:
    """No attachments exist yet: an admin makes the volume in-use as Cinder allows it
    (reset to attached + detaching, then roll_detaching)."""
    vid = api.create(size=1)["id"]
    reset = {"os-reset_status": {"status": "detaching", "attach_status": "attached"}}
    assert api.action(vid, reset, admin=True).status_code == 202
    assert api.action(vid, {"os-roll_detaching": None}).status_code == 202
    assert api.show(vid)["status"] == "in-use"
    bad_request(
        api.action(vid, {"os-extend": {"new_size": 2}}, version="3.41"),
        f"Invalid volume: Volume {vid} status must be '{{'status': 'available'}}' to extend, "
        "currently in-use.",
    )
    assert api.action(vid, {"os-extend": {"new_size": 2}}, version="3.42").status_code == 202
    shown = api.wait(vid, "in-use")
    assert shown["size"] == 2
    assert api.usage("gigabytes") == (2, 0)
    # begin_detaching: in-use + attached -> detaching; roll back -> in-use.
    assert api.action(vid, {"os-begin_detaching": {}}).status_code == 202
    assert api.show(vid)["status"] == "detaching"
    assert api.action(vid, {"os-roll_detaching": {}}).status_code == 202
    assert api.show(vid)["status"] == "in-use"


def test_extend_failing_in_the_driver_ends_in_error_extending(api: Api) -> None:
    """The image is gone from under the volume: the driver's extend fails, the volume goes
    to error_extending with Cinder's user message and the increase's quota is given back."""
    vid = api.create(size=1)["id"]
    _image(api.cluster, vid).unlink()
    assert api.action(vid, {"os-extend": {"new_size": 2}}).status_code == 202
    shown = api.wait(vid, "error_extending")
    assert shown["size"] == 1
    assert api.usage("gigabytes") == (1, 0)
    messages = api.client.get(f"{api.base}/messages", headers=api.hdrs(version="3.3")).json()[
        "messages"
    ]
    assert [(m["resource_uuid"], m["user_message"]) for m in messages] == [
        (vid, "extend volume:Volume Driver failed to extend volume.")
    ]
    # error_extending may be deleted (Cinder's rule); the quota goes back once.
    assert api.client.delete(f"{api.base}/volumes/{vid}", headers=api.hdrs()).status_code == 202
    assert wait_for_404(api.client, f"{api.base}/volumes/{vid}", api.hdrs()).status_code == 404
    assert api.usage("gigabytes") == (0, 0)


def test_extend_accepted_while_the_manager_is_down_ends_when_it_is_back(tmp_path: Path) -> None:
    """The row is the durable record: an extend accepted (202) while the volume's manager is
    killed stays extending with its quota reserved, and the manager restarted finishes it,
    committing the quota once."""
    fleet = Fleet(tmp_path, work={"manager_lease": 3.0})
    fleet.start_all()
    try:
        project = uuid.uuid4().hex
        hdrs = headers(project)
        base = f"{fleet.rest_url}/v3/{project}/volumes"
        with httpx.Client(timeout=30.0) as client:
            created = client.post(base, headers=hdrs, json={"volume": {"size": 1}})
            vid = created.json()["volume"]["id"]
            wait_for_status(client, f"{base}/{vid}", hdrs, "available")
            fleet.kill("volume:file-1")
            extended = client.post(
                f"{base}/{vid}/action", headers=hdrs, json={"os-extend": {"new_size": 2}}
            )
            assert extended.status_code == 202, extended.text
            usage = (
                "select in_use, reserved from quota_usages where project_id = ? and resource = ?"
            )
            assert fleet.rows(usage, project, "gigabytes") == [(1, 1)]
            assert fleet.rows("select status, extend_to_gb from volumes where id = ?", vid) == [
                ("extending", 2)
            ]
            fleet.start("volume:file-1")
            shown = wait_for_status(client, f"{base}/{vid}", hdrs, "available")
        assert shown["size"] == 2
        assert fleet.rows(usage, project, "gigabytes") == [(2, 0)]
        image = fleet.data_dir / "volumes" / "file-1" / f"volume-{vid}"
        assert image.stat().st_size == 2 * GIB
    finally:
        fleet.stop_all()


def test_cinder_extend_with_python_cinderclient(api: Api, tmp_path: Path) -> None:
    vid = api.create(size=1)["id"]
    cli = CinderCli(api.cluster.rest_url, "u1", api.project, tmp_path)
    cli.ok("extend", vid, "2")
    assert api.wait(vid, "available")["size"] == 2
    refused = cli.run("extend", vid, "1")
    assert refused.returncode != 0
    assert "New size for extend must be greater than current size" in refused.stderr
    assert api.usage("gigabytes") == (2, 0)


# --- admin actions ---------------------------------------------------------------------------


def test_reset_status_as_cinder_validates_it(api: Api) -> None:
    vid = api.create()["id"]
    for status in ("error", "available", "maintenance", "ERROR"):
        answer = api.action(vid, {"os-reset_status": {"status": status}}, admin=True)
        assert answer.status_code == 202, answer.text
        assert answer.content == b""
        assert api.show(vid)["status"] == status.lower()
    reset = {"os-reset_status": {"attach_status": "attached", "migration_status": "migrating"}}
    assert api.action(vid, reset, admin=True).status_code == 202
    shown = api.show(vid)
    assert (shown["migration_status"], shown["os-vol-mig-status-attr:migstat"]) == (
        "migrating",
        "migrating",
    )
    reset = {"os-reset_status": {"migration_status": "none", "attach_status": "detached"}}
    assert api.action(vid, reset, admin=True).status_code == 202
    assert api.show(vid)["migration_status"] is None
    assert db_rows(api.cluster, "select attach_status from volumes where id = ?", vid) == [
        ("detached",)
    ]
    bad_request(
        api.action(vid, {"os-reset_status": {"status": "deleting"}}, admin=True),
        "Cannot reset-state to deleting",
    )
    bad_request(
        api.action(vid, {"os-reset_status": {"status": "in-use"}}, admin=True),
        "Cannot reset-state to in-use because volume does not have any attachments.",
    )
    bad_request(
        api.action(vid, {"os-reset_status": {}}, admin=True),
        "Must specify 'status', 'attach_status' or 'migration_status' for update.",
    )
    bad = api.action(vid, {"os-reset_status": {"status": "bogus"}}, admin=True)
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"].startswith(
        "Volume status: bogus is invalid, valid statuses are: ('creating', 'available', "
    )
    bad_request(
        api.action(vid, {"os-reset_status": {"attach_status": "reserved"}}, admin=True),
        "Volume attach status: reserved is invalid, valid statuses are: ['attached', 'detached'].",
    )
    # Not an admin: Cinder's 403, after the volume was found (404 first).
    forbidden = api.action(vid, {"os-reset_status": {"status": "error"}})
    assert forbidden.status_code == 403
    assert "volume_extension:volume_admin_actions:reset_status" in forbidden.text
    missing = api.action(str(uuid.uuid4()), {"os-reset_status": {"status": "error"}})
    assert missing.status_code == 404
    assert api.show(vid)["status"] == "error"


@pytest.mark.parametrize("status", ["creating", "attaching", "error", "maintenance"])
def test_force_delete_whatever_the_status(api: Api, status: str) -> None:
    vid = api.create()["id"]
    image = _image(api.cluster, vid)
    assert api.action(vid, {"os-reset_status": {"status": status}}, admin=True).status_code == 202
    assert api.action(vid, {"os-force_delete": {}}).status_code == 403
    forced = api.action(vid, {"os-force_delete": {}}, admin=True)
    assert forced.status_code == 202, forced.text
    assert forced.content == b""
    assert wait_for_404(api.client, f"{api.base}/volumes/{vid}", api.hdrs()).status_code == 404
    assert not image.exists()
    assert api.usage("volumes") == (0, 0) and api.usage("gigabytes") == (0, 0)


# --- flags -----------------------------------------------------------------------------------


def test_set_bootable_and_readonly(api: Api) -> None:
    vid = api.create()["id"]
    for flag, shown in ((True, "true"), ("false", "false"), ("1", "true")):
        answered = api.action(vid, {"os-set_bootable": {"bootable": flag}})
        assert answered.status_code == 200, answered.text
        assert answered.content == b""
        assert api.show(vid)["bootable"] == shown
    bad_request(
        api.action(vid, {"os-set_bootable": {"bootable": "maybe"}}),
        "Invalid input for field/attribute bootable. Value: maybe. 'maybe' is not one of "
        "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', "
        "False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', "
        "'f']",
    )
    user_meta = api.client.post(
        f"{api.base}/volumes/{vid}/metadata", headers=api.hdrs(), json={"metadata": {"k": "v"}}
    )
    assert user_meta.status_code == 200
    for flag in (True, False):
        answered = api.action(vid, {"os-update_readonly_flag": {"readonly": flag}})
        assert answered.status_code == 202, answered.text
        assert api.show(vid)["metadata"] == {"k": "v", "readonly": str(flag)}
    # The admin key is not the user's metadata.
    listed = api.client.get(f"{api.base}/volumes/{vid}/metadata", headers=api.hdrs())
    assert listed.json() == {"metadata": {"k": "v"}}
    assert api.action(vid, {"os-reset_status": {"status": "maintenance"}}, admin=True)
    bad_request(
        api.action(vid, {"os-update_readonly_flag": {"readonly": True}}),
        f"Invalid volume: Volume {vid} status must be available to update readonly flag, but "
        "current status is: maintenance.",
    )
    bad_request(
        api.action(vid, {"os-set_bootable": {"bootable": True}}),
        "Invalid volume: The volume cannot be updated during maintenance.",
    )


# --- the attach state machine ----------------------------------------------------------------


def test_reserve_unreserve(api: Api) -> None:
    vid = api.create()["id"]
    assert api.action(vid, {"os-reserve": {}}).status_code == 202
    assert api.show(vid)["status"] == "attaching"
    bad_request(
        api.action(vid, {"os-reserve": None}),
        "Invalid volume: Volume status must be available to reserve, but the status is attaching.",
    )
    assert api.action(vid, {"os-unreserve": {}}).status_code == 202
    assert api.show(vid)["status"] == "available"
    # Not reserved: nothing to do (Cinder answers 202).
    assert api.action(vid, {"os-unreserve": {}}).status_code == 202
    assert api.show(vid)["status"] == "available"
    bad_request(
        api.action(vid, {"os-begin_detaching": {}}),
        "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and "
        "attach_status must be 'attached' to detach.",
    )
    assert api.action(vid, {"os-roll_detaching": {}}).status_code == 202
    assert api.show(vid)["status"] == "available"
    missing = api.action(str(uuid.uuid4()), {"os-reserve": {}})
    assert missing.status_code == 404
    # The URL without the project (Cinder's project-less v3 paths).
    bare = api.client.post(
        f"{api.cluster.rest_url}/v3/volumes/{vid}/action",
        headers=api.hdrs(),
        json={"os-reserve": {}},
    )
    assert bare.status_code == 202, bare.text
    assert api.show(vid)["status"] == "attaching"


def test_detach_without_attachments(api: Api) -> None:
    """Cinder's manager leaves a volume without attachments available and detached."""
    vid = api.create()["id"]
    missing = api.action(str(uuid.uuid4()), {"os-detach": {}})
    assert missing.status_code == 404
    reset = {"os-reset_status": {"status": "error", "attach_status": "attached"}}
    assert api.action(vid, reset, admin=True).status_code == 202
    detached = api.action(vid, {"os-detach": {"attachment_id": None}})
    assert detached.status_code == 202, detached.text
    assert detached.content == b""
    assert api.show(vid)["status"] == "available"
    assert db_rows(api.cluster, "select attach_status from volumes where id = ?", vid) == [
        ("detached",)
    ]
    bad_request(
        api.action(vid, {"os-detach": {"attachment_id": "x"}}),
        "Invalid input for field/attribute attachment_id. Value: x. 'x' is not valid under any "
        "of the given schemas",
    )
    assert api.action(vid, {"os-reset_status": {"status": "maintenance"}}, admin=True)
    bad_request(
        api.action(vid, {"os-detach": None}),
        "Invalid volume: The volume cannot be detached in maintenance mode.",
    )


# --- os-retype -------------------------------------------------------------------------------


def _create_type(api: Api, extra_specs: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"t-{uuid.uuid4().hex[:8]}"}
    if extra_specs:
        body["extra_specs"] = extra_specs
    created = api.client.post(
        f"{api.base}/types", headers=api.hdrs(admin=True), json={"volume_type": body}
    )
    assert created.status_code == 200, created.text
    volume_type: dict[str, Any] = created.json()["volume_type"]
    return volume_type


def test_retype_in_place_moves_the_per_type_quota(api: Api) -> None:
    first, second = _create_type(api), _create_type(api)
    vid = api.create(size=2, volume_type=first["name"])["id"]
    host = api.show(vid)["os-vol-host-attr:host"]
    assert api.usage(f"gigabytes_{first['name']}") == (2, 0)
    retyped = api.action(
        vid, {"os-retype": {"new_type": second["name"], "migration_policy": "never"}}
    )
    assert retyped.status_code == 202, retyped.text
    shown = api.show(vid)
    assert (shown["volume_type"], shown["status"], shown["os-vol-host-attr:host"]) == (
        second["name"],
        "available",
        host,
    )
    assert shown["migration_status"] is None
    assert api.usage(f"volumes_{first['name']}") == (0, 0)
    assert api.usage(f"gigabytes_{first['name']}") == (0, 0)
    assert api.usage(f"volumes_{second['name']}") == (1, 0)
    assert api.usage(f"gigabytes_{second['name']}") == (2, 0)
    assert api.usage("gigabytes") == (2, 0)
    # By id, back to the first type.
    assert api.action(vid, {"os-retype": {"new_type": first["id"]}}).status_code == 202
    assert api.show(vid)["volume_type"] == first["name"]
    # To the type it has: Cinder's refusal.
    bad_request(
        api.action(vid, {"os-retype": {"new_type": first["name"]}}),
        "Invalid volume: Retype needs volume to be in available or in-use state, not be part "
        "of an active migration or a consistency group, requested type has to be different "
        "that the one from the volume, and for in-use volumes front-end qos specs cannot "
        "change.",
    )
    missing = api.action(vid, {"os-retype": {"new_type": "no-such-type"}})
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["message"] == (
        "Volume type with name no-such-type could not be found."
    )
    bad_request(
        api.action(vid, {"os-retype": {"new_type": second["name"], "migration_policy": "x"}}),
        "Invalid input for field/attribute migration_policy. Value: x. 'x' is not one of "
        "['on-demand', 'never']",
    )
    bad_request(
        api.action(vid, {"os-retype": {}}),
        "Invalid input for field/attribute os-retype. Value: {}. 'new_type' is a required property",
    )


@pytest.mark.parametrize("policy", ["never", "on-demand"])
def test_retype_needing_a_migration_changes_nothing(api: Api, policy: str) -> None:
    """The volume's backend does not satisfy the new type: Cinder's scheduler leaves the
    volume as it was (202); cindermesh cannot migrate, so on-demand ends the same way."""
    elsewhere = _create_type(api, {"volume_backend_name": "another-backend"})
    vid = api.create(size=1)["id"]
    retyped = api.action(
        vid, {"os-retype": {"new_type": elsewhere["name"], "migration_policy": policy}}
    )
    assert retyped.status_code == 202, retyped.text
    shown = api.show(vid)
    assert (shown["volume_type"], shown["status"]) == ("__DEFAULT__", "available")
    assert api.usage(f"volumes_{elsewhere['name']}") == (0, 0)
    assert api.usage("volumes___DEFAULT__") == (1, 0)


# --- revert (3.40) ---------------------------------------------------------------------------


def take_snapshot(api: Api, volume_id: str) -> str:
    created = api.client.post(
        f"{api.base}/snapshots", headers=api.hdrs(), json={"snapshot": {"volume_id": volume_id}}
    )
    assert created.status_code == 202, created.text
    snapshot_id: str = created.json()["snapshot"]["id"]
    wait_snapshot(api, snapshot_id, "available")
    return snapshot_id


def wait_snapshot(api: Api, snapshot_id: str, status: str) -> None:
    url = f"{api.base}/snapshots/{snapshot_id}"
    deadline = time.monotonic() + 15.0
    while (shown := api.client.get(url, headers=api.hdrs()).json()["snapshot"])["status"] != status:
        assert time.monotonic() < deadline, shown
        time.sleep(0.02)


def _write(path: Path, data: bytes) -> None:
    with path.open("r+b") as image:
        image.write(data)


def _read(path: Path, size: int) -> bytes:
    with path.open("rb") as image:
        return image.read(size)


def test_revert_to_the_latest_snapshot(api: Api) -> None:
    vid = api.create(size=1)["id"]
    image = _image(api.cluster, vid)
    _write(image, b"before the snapshot")
    snapshot_id = take_snapshot(api, vid)
    _write(image, b"written after it...")
    reverted = api.action(vid, {"revert": {"snapshot_id": snapshot_id}}, version="3.40")
    assert reverted.status_code == 202, reverted.text
    assert reverted.content == b""
    api.wait(vid, "available")
    wait_snapshot(api, snapshot_id, "available")
    assert _read(image, 19) == b"before the snapshot"
    assert api.usage("gigabytes")[1] == 0


def test_revert_refusals(api: Api) -> None:
    vid = api.create(size=1)["id"]
    body = {"revert": {"snapshot_id": str(uuid.uuid4())}}
    old = api.action(vid, body, version="3.39")
    assert old.status_code == 404
    bad_request(api.action(vid, body, version="3.40"), f"Volume {vid} doesn't have any snapshots.")
    first = take_snapshot(api, vid)
    latest = take_snapshot(api, vid)
    bad_request(
        api.action(vid, {"revert": {"snapshot_id": first}}, version="3.40"),
        f"Specified snapshot {first} is None or not the latest one of volume {vid}.",
    )
    bad_request(
        api.action(vid, {"revert": {}}, version="3.40"),
        f"Specified snapshot None is None or not the latest one of volume {vid}.",
    )
    assert api.action(vid, {"os-reset_status": {"status": "error"}}, admin=True).status_code == 202
    conflict = api.action(vid, {"revert": {"snapshot_id": latest}}, version="3.40")
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["conflictingRequest"]["message"] == (
        f"Invalid volume: Can't revert volume {vid} to its latest snapshot {latest}. Volume's "
        "status must be 'available'."
    )
    assert api.action(vid, {"os-reset_status": {"status": "available"}}, admin=True)
    assert api.action(vid, {"os-extend": {"new_size": 2}}).status_code == 202
    api.wait(vid, "available")
    bad_request(
        api.action(vid, {"revert": {"snapshot_id": latest}}, version="3.40"),
        f"Can't revert volume {vid} to its latest snapshot {latest}. The volume size must be "
        "equal to the snapshot size.",
    )
    for snapshot_id in (first, latest):
        url = f"{api.base}/snapshots/{snapshot_id}"
        assert api.client.get(url, headers=api.hdrs()).json()["snapshot"]["status"] == "available"


def test_retype_changing_the_encryption_changes_nothing(api: Api) -> None:
    """Cinder's manager migrates a volume whose encryption changes: no retype in place."""
    encrypted = _create_type(api)
    body = {
        "encryption": {
            "provider": "luks",
            "control_location": "front-end",
            "cipher": "aes-xts-plain64",
            "key_size": 256,
        }
    }
    added = api.client.post(
        f"{api.base}/types/{encrypted['id']}/encryption", headers=api.hdrs(admin=True), json=body
    )
    assert added.status_code == 200, added.text
    vid = api.create(size=1)["id"]
    retyped = api.action(vid, {"os-retype": {"new_type": encrypted["name"]}})
    assert retyped.status_code == 202, retyped.text
    shown = api.show(vid)
    assert (shown["volume_type"], shown["status"], shown["encrypted"]) == (
        "__DEFAULT__",
        "available",
        False,
    )
    assert api.usage(f"volumes_{encrypted['name']}") == (0, 0)
