"""Volume transfers through the real gateway, between two projects: create (the auth key shown
once, only its hash stored), show, lists, accept (the volume and its quota usage move to the
accepting project, once), a wrong key, delete, Cinder's refusals; and the real
python-cinderclient's `transfer-create` / `transfer-accept`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client_helpers import CinderCli, parse_property_table
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers, wait_for_404, wait_for_status

ADMIN_PROJECT = "adm1n000000000000000000000000001"
LATEST = "3.71"


class Project:
    """REST calls as one project's user."""

    def __init__(self, cluster: Cluster, client: httpx.Client, user: str) -> None:
        self.id = uuid.uuid4().hex
        self.user = user
        self.cluster = cluster
        self.client = client

    def call(self, method: str, path: str, version: str = LATEST, **kwargs: Any) -> httpx.Response:
        url = f"{self.cluster.rest_url}/v3/{self.id}{path}"
        hdrs = headers(self.id, user=self.user, version=version)
        return self.client.request(method, url, headers=hdrs, **kwargs)

    def volume(self, size: int = 1) -> str:
        created = self.call("POST", "/volumes", json={"volume": {"size": size}})
        assert created.status_code == 202, created.text
        volume_id: str = created.json()["volume"]["id"]
        self.wait(volume_id, "available")
        return volume_id

    def wait(self, volume_id: str, status: str) -> dict[str, Any]:
        url = f"{self.cluster.rest_url}/v3/{self.id}/volumes/{volume_id}"
        return wait_for_status(self.client, url, headers(self.id, user=self.user), status)

    def usage(self, names: tuple[str, ...] = ("volumes", "gigabytes")) -> dict[str, int]:
        """in_use of the named resources, as the admin reads them."""
        url = f"{self.cluster.rest_url}/v3/{ADMIN_PROJECT}/os-quota-sets/{self.id}?usage=True"
        shown = self.client.get(url, headers=headers(ADMIN_PROJECT, user="admin"))
        assert shown.status_code == 200, shown.text
        quota_set = shown.json()["quota_set"]
        return {name: quota_set[name]["in_use"] for name in names}

    def snapshot(self, volume_id: str) -> str:
        body = {"snapshot": {"volume_id": volume_id}}
        created = self.call("POST", "/snapshots", json=body)
        assert created.status_code == 202, created.text
        snapshot_id: str = created.json()["snapshot"]["id"]
        deadline = time.monotonic() + 15
        while self.call("GET", f"/snapshots/{snapshot_id}").json()["snapshot"]["status"] != (
            "available"
        ):
            assert time.monotonic() < deadline, "the snapshot never became available"
            time.sleep(0.05)
        return snapshot_id

    def transfer(self, volume_id: str, path: str = "/volume-transfers", **fields: Any) -> Any:
        created = self.call("POST", path, json={"transfer": {"volume_id": volume_id, **fields}})
        assert created.status_code == 202, created.text
        return created.json()["transfer"]


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


@pytest.fixture()
def donor(cluster: Cluster, client: httpx.Client) -> Project:
    return Project(cluster, client, "donor")


@pytest.fixture()
def acceptor(cluster: Cluster, client: httpx.Client) -> Project:
    return Project(cluster, client, "taker")


def _fault(response: httpx.Response, status: int, key: str) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()[key]["message"]
    return message


def test_create_accept_moves_the_volume_and_its_quota(
    cluster: Cluster, donor: Project, acceptor: Project
) -> None:
    volume_id = donor.volume(size=2)
    assert donor.usage() == {"volumes": 1, "gigabytes": 2}
    transfer = donor.transfer(volume_id, name="  move me ")
    assert set(transfer) == {
        "id", "created_at", "name", "volume_id", "auth_key", "links", "no_snapshots",
        "source_project_id", "destination_project_id", "accepted",
    }  # fmt: skip
    assert transfer["name"] == "move me"
    assert transfer["source_project_id"] == donor.id
    assert transfer["destination_project_id"] is None
    assert transfer["accepted"] is False
    assert transfer["no_snapshots"] is False
    auth_key = transfer["auth_key"]
    assert len(auth_key) == 16 and int(auth_key, 16) >= 0
    assert transfer["links"][0]["href"].endswith(
        f"/v3/{donor.id}/os-volume-transfer/{transfer['id']}"
    )
    # Only the salted hash is stored.
    ((salt, crypt_hash),) = db_rows(
        cluster, "select salt, crypt_hash from transfers where id = ?", transfer["id"]
    )
    assert auth_key not in (salt, crypt_hash) and len(salt) == 8 and len(crypt_hash) == 40
    assert donor.wait(volume_id, "awaiting-transfer")["status"] == "awaiting-transfer"

    shown = donor.call("GET", f"/volume-transfers/{transfer['id']}").json()["transfer"]
    assert "auth_key" not in shown and shown["volume_id"] == volume_id
    legacy = donor.call("GET", f"/os-volume-transfer/{transfer['id']}", version="3.0")
    assert set(legacy.json()["transfer"]) == {"id", "created_at", "name", "volume_id", "links"}
    summaries = donor.call("GET", "/volume-transfers").json()["transfers"]
    assert [set(t) for t in summaries] == [{"id", "volume_id", "name", "links"}]
    details = donor.call("GET", "/os-volume-transfer/detail").json()["transfers"]
    assert [t["id"] for t in details] == [transfer["id"]]
    # Another project sees neither the transfer nor the volume.
    assert acceptor.call("GET", f"/volume-transfers/{transfer['id']}").status_code == 404
    assert acceptor.call("GET", "/volume-transfers").json()["transfers"] == []

    wrong = acceptor.call(
        "POST", f"/volume-transfers/{transfer['id']}/accept", json={"accept": {"auth_key": "x"}}
    )
    assert _fault(wrong, 400, "badRequest") == (
        f"Invalid auth key: Attempt to transfer {transfer['id']} with invalid auth key."
    )
    assert donor.usage() == {"volumes": 1, "gigabytes": 2}

    accepted = acceptor.call(
        "POST",
        f"/volume-transfers/{transfer['id']}/accept",
        json={"accept": {"auth_key": auth_key}},
    )
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()["transfer"]
    assert set(body) == {"id", "volume_id", "name", "links"}
    assert (body["id"], body["volume_id"], body["name"]) == (transfer["id"], volume_id, "move me")

    moved = acceptor.call("GET", f"/volumes/{volume_id}").json()["volume"]
    assert moved["status"] == "available"
    assert moved["user_id"] == "taker"
    assert moved["os-vol-tenant-attr:tenant_id"] == acceptor.id
    assert donor.call("GET", f"/volumes/{volume_id}").status_code == 404
    assert donor.usage() == {"volumes": 0, "gigabytes": 0}
    assert acceptor.usage() == {"volumes": 1, "gigabytes": 2}
    assert db_rows(cluster, "select * from transfers where id = ?", transfer["id"]) == []
    assert db_rows(cluster, "select count(*) from reservations where project_id in (?, ?)",
                   donor.id, acceptor.id) == [(0,)]  # fmt: skip

    # Once: the transfer is gone.
    again = acceptor.call(
        "POST",
        f"/os-volume-transfer/{transfer['id']}/accept",
        json={"accept": {"auth_key": auth_key}},
    )
    assert _fault(again, 404, "itemNotFound") == f"Transfer {transfer['id']} could not be found."
    # The new owner deletes it; its quota goes back to zero.
    assert acceptor.call("DELETE", f"/volumes/{volume_id}").status_code == 202
    volume_url = f"{cluster.rest_url}/v3/{acceptor.id}/volumes/{volume_id}"
    hdrs = headers(acceptor.id, user=acceptor.user)
    assert wait_for_404(acceptor.client, volume_url, hdrs).status_code == 404
    assert acceptor.usage() == {"volumes": 0, "gigabytes": 0}


def test_delete_gives_the_volume_back(donor: Project, acceptor: Project) -> None:
    volume_id = donor.volume()
    transfer = donor.transfer(volume_id, path="/os-volume-transfer")
    assert transfer["name"] is None
    donor.wait(volume_id, "awaiting-transfer")
    # A volume awaiting a transfer cannot be transferred again, nor deleted.
    twice = donor.call("POST", "/volume-transfers", json={"transfer": {"volume_id": volume_id}})
    assert _fault(twice, 400, "badRequest") == "Invalid volume: status must be available"
    assert donor.call("DELETE", f"/volumes/{volume_id}").status_code == 400
    # Another project cannot delete it.
    assert acceptor.call("DELETE", f"/volume-transfers/{transfer['id']}").status_code == 404

    deleted = donor.call("DELETE", f"/os-volume-transfer/{transfer['id']}")
    assert deleted.status_code == 202 and deleted.content == b""
    donor.wait(volume_id, "available")
    gone = donor.call("GET", f"/volume-transfers/{transfer['id']}")
    assert _fault(gone, 404, "itemNotFound") == f"Transfer {transfer['id']} could not be found."
    assert donor.call("DELETE", f"/volume-transfers/{transfer['id']}").status_code == 404
    assert donor.usage() == {"volumes": 1, "gigabytes": 1}
    assert donor.call("DELETE", f"/volumes/{volume_id}").status_code == 202


def test_accept_over_the_acceptors_quota_changes_nothing(
    donor: Project, acceptor: Project, client: httpx.Client, cluster: Cluster
) -> None:
    volume_id = donor.volume(size=3)
    transfer = donor.transfer(volume_id)
    url = f"{cluster.rest_url}/v3/{ADMIN_PROJECT}/os-quota-sets/{acceptor.id}"
    put = client.put(
        url, headers=headers(ADMIN_PROJECT, user="admin"), json={"quota_set": {"gigabytes": 2}}
    )
    assert put.status_code == 200, put.text
    refused = acceptor.call(
        "POST",
        f"/volume-transfers/{transfer['id']}/accept",
        json={"accept": {"auth_key": transfer["auth_key"]}},
    )
    assert _fault(refused, 413, "overLimit") == (
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 3G, quota is "
        "2G and 0G has been consumed."
    )
    assert donor.wait(volume_id, "awaiting-transfer")["status"] == "awaiting-transfer"
    assert donor.usage() == {"volumes": 1, "gigabytes": 3}
    assert acceptor.usage() == {"volumes": 0, "gigabytes": 0}
    assert donor.call("GET", f"/volume-transfers/{transfer['id']}").status_code == 200
    assert donor.call("DELETE", f"/volume-transfers/{transfer['id']}").status_code == 202


@pytest.mark.parametrize(
    ("path", "version", "transfer", "message"),
    [
        (
            "/volume-transfers",
            "3.55",
            {"volume_id": "nope"},
            "Invalid input for field/attribute volume_id. Value: nope. 'nope' is not a 'uuid'",
        ),
        (
            "/volume-transfers",
            "3.54",
            {"volume_id": "4d75b645-a478-48b1-97c8-503f64242f1a", "no_snapshots": True},
            "Invalid input for field/attribute transfer. Value: {'no_snapshots': True, "
            "'volume_id': '4d75b645-a478-48b1-97c8-503f64242f1a'}. Additional properties are "
            "not allowed ('no_snapshots' was unexpected)",
        ),
        (
            "/os-volume-transfer",
            "3.55",
            {"volume_id": "4d75b645-a478-48b1-97c8-503f64242f1a", "no_snapshots": True},
            "Invalid input for field/attribute transfer. Value: {'no_snapshots': True, "
            "'volume_id': '4d75b645-a478-48b1-97c8-503f64242f1a'}. Additional properties are "
            "not allowed ('no_snapshots' was unexpected)",
        ),
        (
            "/volume-transfers",
            "3.55",
            {"volume_id": "4d75b645-a478-48b1-97c8-503f64242f1a", "name": "  "},
            "An invalid 'name' value was provided. The 'name' can not be empty.",
        ),
        (
            "/volume-transfers",
            "3.55",
            {"name": "a"},
            "Invalid input for field/attribute transfer. Value: {'name': 'a'}. 'volume_id' is "
            "a required property",
        ),
    ],
)
def test_create_validation(
    donor: Project, path: str, version: str, transfer: dict[str, Any], message: str
) -> None:
    refused = donor.call("POST", path, version=version, json={"transfer": transfer})
    assert _fault(refused, 400, "badRequest") == message


def test_create_of_an_unknown_volume_is_404(donor: Project, acceptor: Project) -> None:
    volume_id = donor.volume()
    refused = acceptor.call(
        "POST", "/volume-transfers", json={"transfer": {"volume_id": volume_id}}
    )
    assert _fault(refused, 404, "itemNotFound") == f"Volume {volume_id} could not be found."
    assert donor.call("DELETE", f"/volumes/{volume_id}").status_code == 202


def test_accept_validation(donor: Project) -> None:
    refused = donor.call("POST", f"/volume-transfers/{uuid.uuid4()}/accept", json={"accept": {}})
    assert _fault(refused, 400, "badRequest") == (
        "Invalid input for field/attribute accept. Value: {}. 'auth_key' is a required property"
    )


def test_cinderclient_transfer_create_and_accept(
    cluster: Cluster, donor: Project, acceptor: Project, tmp_path: Path
) -> None:
    volume_id = donor.volume()
    giver = CinderCli(cluster.rest_url, donor.user, donor.id, tmp_path)
    taker = CinderCli(cluster.rest_url, acceptor.user, acceptor.id, tmp_path)
    created = parse_property_table(giver.ok("transfer-create", "--name", "cli", volume_id))
    assert created["volume_id"] == volume_id and created["name"] == "cli"
    listed = giver.ok("transfer-list")
    assert created["id"] in listed
    accepted = parse_property_table(taker.ok("transfer-accept", created["id"], created["auth_key"]))
    assert accepted["volume_id"] == volume_id
    assert acceptor.wait(volume_id, "available")["user_id"] == acceptor.user
    assert acceptor.usage() == {"volumes": 1, "gigabytes": 1}
    assert donor.usage() == {"volumes": 0, "gigabytes": 0}
    assert acceptor.call("DELETE", f"/volumes/{volume_id}").status_code == 202


ALL = ("volumes", "gigabytes", "snapshots")


@pytest.mark.parametrize("no_snapshots", [False, True])
def test_snapshots_move_with_the_volume_unless_told(
    cluster: Cluster, donor: Project, acceptor: Project, no_snapshots: bool
) -> None:
    volume_id = donor.volume(size=2)
    snapshot_id = donor.snapshot(volume_id)
    assert donor.usage(ALL) == {"volumes": 1, "gigabytes": 4, "snapshots": 1}
    transfer = donor.transfer(volume_id, no_snapshots=no_snapshots)
    assert transfer["no_snapshots"] is no_snapshots
    accepted = acceptor.call(
        "POST",
        f"/volume-transfers/{transfer['id']}/accept",
        json={"accept": {"auth_key": transfer["auth_key"]}},
    )
    assert accepted.status_code == 202, accepted.text
    ((owner,),) = db_rows(cluster, "select project_id from snapshots where id = ?", snapshot_id)
    if no_snapshots:
        assert owner == donor.id
        assert donor.usage(ALL) == {"volumes": 0, "gigabytes": 2, "snapshots": 1}
        assert acceptor.usage(ALL) == {"volumes": 1, "gigabytes": 2, "snapshots": 0}
    else:
        assert owner == acceptor.id
        assert acceptor.call("GET", f"/snapshots/{snapshot_id}").status_code == 200
        assert donor.usage(ALL) == {"volumes": 0, "gigabytes": 0, "snapshots": 0}
        assert acceptor.usage(ALL) == {"volumes": 1, "gigabytes": 4, "snapshots": 1}


def test_a_snapshot_not_available_refuses_the_transfer(
    cluster: Cluster, donor: Project, client: httpx.Client
) -> None:
    volume_id = donor.volume()
    snapshot_id = donor.snapshot(volume_id)
    reset = client.post(
        f"{cluster.rest_url}/v3/{ADMIN_PROJECT}/snapshots/{snapshot_id}/action",
        headers=headers(ADMIN_PROJECT, user="admin"),
        json={"os-reset_status": {"status": "error"}},
    )
    assert reset.status_code == 202, reset.text
    refused = donor.call("POST", "/volume-transfers", json={"transfer": {"volume_id": volume_id}})
    assert _fault(refused, 400, "badRequest") == (
        f"Invalid snapshot: snapshot: {snapshot_id} status must be available"
    )
    assert donor.wait(volume_id, "available")["status"] == "available"
    # Without its snapshots the volume may go.
    alone = donor.transfer(volume_id, no_snapshots=True)
    assert alone["no_snapshots"] is True
