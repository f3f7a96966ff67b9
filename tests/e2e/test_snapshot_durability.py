"""Snapshot work survives its volume manager: snapshots created and deleted while the manager
is dead (killed -9) are accepted by the api (the rows are the record) and done by the manager
once it is back (its take-over at start), with the files and the quota exact."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.fleet import Fleet
from tests.e2e.helpers import headers, wait_for_404, wait_for_status

BACKEND = "file-1"


@pytest.fixture()
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path, work={"manager_lease": 3.0})
    running.start_all()
    yield running
    running.stop_all()


def _snapshot_files(fleet: Fleet) -> set[str]:
    return {p.name for p in (fleet.data_dir / "volumes" / BACKEND).glob("snapshot-*")}


def _status(client: httpx.Client, url: str, hdrs: dict[str, str]) -> str:
    shown: dict[str, Any] = client.get(url, headers=hdrs).json()["snapshot"]
    return str(shown["status"])


def test_snapshots_accepted_while_the_manager_is_dead_are_done_once_it_is_back(
    fleet: Fleet,
) -> None:
    project = uuid.uuid4().hex
    hdrs = headers(project)
    base = f"{fleet.rest_url}/v3/{project}"
    with httpx.Client(timeout=60) as client:
        created = client.post(f"{base}/volumes", headers=hdrs, json={"volume": {"size": 1}})
        volume_id = created.json()["volume"]["id"]
        wait_for_status(client, f"{base}/volumes/{volume_id}", hdrs, "available", timeout=60)
        body = {"snapshot": {"volume_id": volume_id}}
        old = client.post(f"{base}/snapshots", headers=hdrs, json=body).json()["snapshot"]["id"]
        old_url = f"{base}/snapshots/{old}"
        wait_for_status(client, old_url, hdrs, "available", timeout=60, resource="snapshot")

        fleet.kill(f"volume:{BACKEND}")
        new = []
        for _ in range(5):
            response = client.post(f"{base}/snapshots", headers=hdrs, json=body)
            assert response.status_code == 202, response.text
            new.append(response.json()["snapshot"]["id"])
        assert client.delete(old_url, headers=hdrs).status_code == 202
        # Nobody does the work meanwhile: the rows wait, as the api wrote them.
        assert {_status(client, f"{base}/snapshots/{i}", hdrs) for i in new} == {"creating"}
        assert _status(client, old_url, hdrs) == "deleting"
        assert _snapshot_files(fleet) == {f"snapshot-{old}"}

        restarted = time.monotonic()
        fleet.start(f"volume:{BACKEND}")
        for snapshot_id in new:
            url = f"{base}/snapshots/{snapshot_id}"
            wait_for_status(client, url, hdrs, "available", timeout=60, resource="snapshot")
        assert wait_for_404(client, old_url, hdrs, timeout=60).status_code == 404
        print(f"snapshot work done {time.monotonic() - restarted:.2f} s after the restart")
        assert _snapshot_files(fleet) == {f"snapshot-{i}" for i in new}
        usage = client.get(f"{base}/os-quota-sets/{project}?usage=True", headers=hdrs).json()
        snapshots = usage["quota_set"]["snapshots"]
        assert (snapshots["in_use"], snapshots["reserved"]) == (5, 0)
        # Nobody holds them any more.
        held = fleet.rows("SELECT count(*) FROM snapshots WHERE worker IS NOT NULL")
        assert held == [(0,)]
