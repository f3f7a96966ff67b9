"""Attachments with a dead volume manager (killed -9): nothing is left stuck. A connection asked
for while the manager is dead fails cleanly (503, nothing written), and every client rollback
Nova makes still works: the reserved attachment is deleted, the volume ``available``; an
attached volume can still be detached (DELETE /attachments, and an admin's os-force_detach),
its connection forgotten when the manager is back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.fleet import Fleet
from tests.e2e.helpers import headers, wait_for_status

BACKEND = "file-1"
CONNECTOR = {"host": "compute-9", "ip": "192.0.2.9", "initiator": "iqn.x", "mountpoint": "/dev/vdb"}


@pytest.fixture()
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path)
    running.start_all()
    yield running
    running.stop_all()


def _rows(fleet: Fleet, volume_id: str) -> tuple[Any, ...]:
    """The volume's status and attach status, and its attachments' statuses."""
    ((status, attach_status),) = fleet.rows(
        "SELECT status, attach_status FROM volumes WHERE id = ?", volume_id
    )
    held = fleet.rows(
        "SELECT attach_status FROM volume_attachment WHERE volume_id = ? ORDER BY 1", volume_id
    )
    return status, attach_status, [row[0] for row in held]


def _attach(client: httpx.Client, base: str, hdrs: dict[str, str], volume_id: str) -> str:
    body = {"attachment": {"volume_uuid": volume_id, "instance_uuid": str(uuid.uuid4())}}
    created = client.post(f"{base}/attachments", headers=hdrs, json=body)
    assert created.status_code == 200, created.text
    attachment_id: str = created.json()["attachment"]["id"]
    return attachment_id


def test_a_dead_manager_leaves_nothing_stuck(fleet: Fleet) -> None:
    project = uuid.uuid4().hex
    hdrs = headers(project, version="3.44")
    admin = headers(project, "admin", version="3.44")
    base = f"{fleet.rest_url}/v3/{project}"
    with httpx.Client(timeout=60) as client:
        ids = []
        for _ in range(2):
            created = client.post(f"{base}/volumes", headers=hdrs, json={"volume": {"size": 1}})
            ids.append(created.json()["volume"]["id"])
        for volume_id in ids:
            wait_for_status(client, f"{base}/volumes/{volume_id}", hdrs, "available", timeout=60)
        reserved_volume, attached_volume = ids
        # One volume attached (Nova's whole sequence) while the manager lives.
        attached = _attach(client, base, hdrs, attached_volume)
        update = {"attachment": {"connector": CONNECTOR}}
        connected = client.put(f"{base}/attachments/{attached}", headers=hdrs, json=update)
        assert connected.status_code == 200, connected.text
        completed = client.post(
            f"{base}/attachments/{attached}/action", headers=hdrs, json={"os-complete": None}
        )
        assert completed.status_code == 204
        assert _rows(fleet, attached_volume) == ("in-use", "attached", ["attached"])

        fleet.kill(f"volume:{BACKEND}")
        # A connection asked for now fails cleanly: the reservation stays as it was.
        reserved = _attach(client, base, hdrs, reserved_volume)
        failed = client.put(f"{base}/attachments/{reserved}", headers=hdrs, json=update)
        assert failed.status_code == 500, failed.text
        # Cinder's words for a manager that does not answer (its RPC timeout).
        assert failed.json()["computeFault"]["message"] == "Unable to update the attachment."
        assert _rows(fleet, reserved_volume) == ("reserved", "detached", ["reserved"])
        # Nova's rollback: delete the attachment.
        deleted = client.delete(f"{base}/attachments/{reserved}", headers=hdrs)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"attachments": []}
        assert _rows(fleet, reserved_volume) == ("available", "detached", [])
        # A create with the connector in it is undone at once: nothing to roll back.
        body = {"attachment": {"volume_uuid": reserved_volume, "connector": CONNECTOR}}
        failed = client.post(f"{base}/attachments", headers=hdrs, json=body)
        assert failed.status_code == 500, failed.text
        message = failed.json()["computeFault"]["message"]
        assert message == "Unable to create attachment for volume."
        assert _rows(fleet, reserved_volume) == ("available", "detached", [])
        # The attached volume's host is gone too: an admin force-detaches it.
        force = {"os-force_detach": {"attachment_id": attached, "connector": CONNECTOR}}
        detached = client.post(
            f"{base}/volumes/{attached_volume}/action", headers=admin, json=force
        )
        assert detached.status_code == 202, detached.text
        assert _rows(fleet, attached_volume) == ("available", "detached", [])
        shown = client.get(f"{base}/volumes/{attached_volume}", headers=hdrs).json()["volume"]
        assert (shown["status"], shown["attachments"]) == ("available", [])

        fleet.start(f"volume:{BACKEND}")
        # Back: both volumes attach again, as new.
        again = _attach(client, base, hdrs, attached_volume)
        connected = client.put(f"{base}/attachments/{again}", headers=hdrs, json=update)
        assert connected.status_code == 200, connected.text
        assert client.delete(f"{base}/attachments/{again}", headers=hdrs).status_code == 200
        assert _rows(fleet, attached_volume) == ("available", "detached", [])
