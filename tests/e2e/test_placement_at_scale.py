"""Placement across several backends and scheduler replicas, on the real processes (``Fleet``:
Envoy, api, scheduler replicas, one file-driver volume manager per backend, real SQLite).

* Three thick backends of 10, 20 and 40 GiB (``deploy/examples/three-backends.toml``'s):
  60 creates of 1 GiB land as Cinder's CapacityWeigher predicts (most free first, ties to
  the first pool by name), computed here independently of the product; the table is printed
  (``pytest -s``).
* A type pinned by ``volume_backend_name`` always lands there; a zone's volumes land in that
  zone, an unknown zone is Cinder's 400; ``different_host``/``same_host`` hints keep volumes
  apart or together.
* Two scheduler replicas, 50 concurrent creates against pools that hold 40: exactly 40
  ``available``, 10 ``error`` each with the user message naming CapacityFilter, no pool
  over-committed, both replicas placed some; then the same with one replica killed -9 in the
  middle of the burst: every accepted volume still ends ``available`` or ``error``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.fleet import Fleet

HOST = "fleet"
ADMIN = "admin"


def _project() -> str:
    return uuid.uuid4().hex


def _headers(project: str, user: str = "u1") -> dict[str, str]:
    return {
        "X-Auth-Token": f"{user}:{project}",
        "Content-Type": "application/json",
        "OpenStack-API-Version": "volume 3.60",
    }


def _pool(backend: str) -> str:
    return f"{HOST}@{backend}#{backend}"


#: The example's filters: Cinder's defaults and those of the CSI driver's hints.
AFFINITY_FILTERS = (
    "AvailabilityZoneFilter",
    "CapacityFilter",
    "CapabilitiesFilter",
    "SameBackendFilter",
    "DifferentBackendFilter",
)


def _fleet(
    base: Path,
    sizes: dict[str, tuple[int, str]],
    schedulers: int = 1,
    filters: tuple[str, ...] = (),
    **work: float,
) -> Fleet:
    return Fleet(
        base,
        backends=tuple(sizes),
        backend_settings={
            name: {
                "total_capacity_gb": size,
                "availability_zone": zone,
                "provisioning": "thick",
                "reserved_percentage": 0,
            }
            for name, (size, zone) in sizes.items()
        },
        schedulers=schedulers,
        scheduler_settings={"scheduler_default_filters": filters} if filters else {},
        work={"handoff_timeout": 5.0, **work},
    )


THREE = {"file-10g": (10, "az1"), "file-20g": (20, "az1"), "file-40g": (40, "az2")}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = _fleet(tmp_path_factory.mktemp("three"), THREE, filters=AFFINITY_FILTERS)
    fleet.start_all()
    try:
        yield fleet
    finally:
        fleet.stop_all()


def _create(fleet: Fleet, project: str, **volume: Any) -> httpx.Response:
    return httpx.post(
        f"{fleet.rest_url}/v3/{project}/volumes",
        headers=_headers(project),
        json={"volume": {"size": 1, **volume}},
        timeout=30,
    )


def _wait_placed(fleet: Fleet, volume_id: str, timeout: float = 20.0) -> tuple[str, str | None]:
    """(status, host) once the volume is no longer being created."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = fleet.rows("select status, host from volumes where id = ?", volume_id)
        if rows and rows[0][0] != "creating":
            return rows[0][0], rows[0][1]
        time.sleep(0.02)
    raise AssertionError(f"volume {volume_id} still creating after {timeout} s")


def _delete_all(fleet: Fleet, project: str) -> None:
    for (volume_id,) in fleet.rows("select id from volumes where project_id = ?", project):
        httpx.delete(
            f"{fleet.rest_url}/v3/{project}/volumes/{volume_id}",
            headers=_headers(project),
            timeout=30,
        )
    deadline = time.monotonic() + 30
    while fleet.rows("select 1 from volumes where project_id = ?", project):
        assert time.monotonic() < deadline, "volumes not deleted"
        time.sleep(0.05)


def predicted_spread(capacities: dict[str, int], count: int) -> dict[str, int]:
    """Cinder's CapacityWeigher on thick pools with no reserve, one 1 GiB volume at a time:
    the pool with the most free space wins (its weight is the free space, normalised, times
    a positive multiplier); equal weights keep the pools' order (by name)."""
    free = dict(capacities)
    placed = dict.fromkeys(capacities, 0)
    for _ in range(count):
        best = max(sorted(free), key=lambda name: free[name])
        free[best] -= 1
        placed[best] += 1
    return placed


#: The 60 creates: 24 in az1 (the 10 and 20 GiB pools), 36 in az2 (the 40 GiB pool), in turn.
ZONES = ["az1", "az2", "az2", "az1", "az2"] * 12


def test_sixty_creates_land_as_the_capacity_weigher_predicts(three: Fleet) -> None:
    project = _project()
    landed: Counter[str] = Counter()
    for zone in ZONES:
        response = _create(three, project, availability_zone=zone)
        assert response.status_code == 202, response.text
        status, host = _wait_placed(three, response.json()["volume"]["id"])
        assert status == "available"
        assert host is not None
        landed[host] += 1
    expected: dict[str, int] = {}
    for zone in ("az1", "az2"):
        capacities = {name: size for name, (size, z) in THREE.items() if z == zone}
        expected |= predicted_spread(capacities, ZONES.count(zone))
    print("\npool          zone  capacity  expected  measured")
    for name, (size, zone) in THREE.items():
        print(f"{name:12}  {zone:4}  {size:8}  {expected[name]:8}  {landed[_pool(name)]:8}")
    assert {name: landed[_pool(name)] for name in THREE} == expected
    assert expected == {"file-10g": 7, "file-20g": 17, "file-40g": 36}
    _delete_all(three, project)


def _admin(fleet: Fleet, method: str, path: str, **body: Any) -> httpx.Response:
    project = _project()
    return httpx.request(
        method,
        f"{fleet.rest_url}/v3/{project}{path}",
        headers=_headers(project, ADMIN),
        json=body or None,
        timeout=30,
    )


def test_a_type_pinned_by_backend_name_always_lands_there(three: Fleet) -> None:
    project = _project()
    for key in ("volume_backend_name", "capabilities:volume_backend_name"):
        name = f"pinned-{uuid.uuid4().hex[:8]}"
        made = _admin(
            three, "POST", "/types", volume_type={"name": name, "extra_specs": {key: "file-10g"}}
        )
        assert made.status_code == 200, made.text
        for _ in range(4):
            response = _create(three, project, volume_type=name, availability_zone="az1")
            assert response.status_code == 202, response.text
            assert _wait_placed(three, response.json()["volume"]["id"]) == (
                "available",
                _pool("file-10g"),
            )
    _delete_all(three, project)


def test_zones_are_honoured_or_refused_as_cinder(three: Fleet) -> None:
    project = _project()
    for zone, pools in (
        ("az2", {_pool("file-40g")}),
        ("az1", {_pool("file-10g"), _pool("file-20g")}),
    ):
        for _ in range(3):
            response = _create(three, project, availability_zone=zone)
            assert response.status_code == 202, response.text
            status, host = _wait_placed(three, response.json()["volume"]["id"])
            assert status == "available" and host in pools, (zone, host)
    refused = _create(three, project, availability_zone="nowhere")
    assert refused.status_code == 400
    assert refused.json() == {
        "badRequest": {"code": 400, "message": "Availability zone 'nowhere' is invalid."}
    }
    _delete_all(three, project)


def test_different_host_keeps_volumes_apart_and_same_host_together(three: Fleet) -> None:
    project = _project()
    first = _create(three, project, availability_zone="az1").json()["volume"]["id"]
    _, first_host = _wait_placed(three, first)
    hinted = httpx.post(
        f"{three.rest_url}/v3/{project}/volumes",
        headers=_headers(project),
        json={
            "volume": {"size": 1, "availability_zone": "az1"},
            "OS-SCH-HNT:scheduler_hints": {"different_host": [first]},
        },
        timeout=30,
    )
    assert hinted.status_code == 202, hinted.text
    status, apart_host = _wait_placed(three, hinted.json()["volume"]["id"])
    assert status == "available" and apart_host != first_host
    together = httpx.post(
        f"{three.rest_url}/v3/{project}/volumes",
        headers=_headers(project),
        json={
            "volume": {"size": 1, "availability_zone": "az1"},
            "OS-SCH-HNT:scheduler_hints": {"same_host": first},
        },
        timeout=30,
    )
    assert together.status_code == 202, together.text
    assert _wait_placed(three, together.json()["volume"]["id"]) == ("available", first_host)
    bad = httpx.post(
        f"{three.rest_url}/v3/{project}/volumes",
        headers=_headers(project),
        json={"volume": {"size": 1}, "OS-SCH-HNT:scheduler_hints": {"same_host": "not-a-uuid"}},
        timeout=30,
    )
    assert bad.status_code == 400
    assert "OS-SCH-HNT:scheduler_hints/same_host" in bad.json()["badRequest"]["message"]
    _delete_all(three, project)


FORTY = {"file-a": (10, "nova"), "file-b": (10, "nova"), "file-c": (20, "nova")}


async def _burst(fleet: Fleet, project: str, count: int) -> list[str]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one() -> str | None:
            response = await client.post(
                f"{fleet.rest_url}/v3/{project}/volumes",
                headers=_headers(project),
                json={"volume": {"size": 1}},
            )
            return str(response.json()["volume"]["id"]) if response.status_code == 202 else None

        results = await asyncio.gather(*(one() for _ in range(count)))
    return [volume_id for volume_id in results if volume_id]


def _settle(fleet: Fleet, project: str, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = dict(
            fleet.rows(
                "select status, count(*) from volumes where project_id = ? group by status",
                project,
            )
        )
        if not counts.get("creating"):
            return counts
        assert time.monotonic() < deadline, f"still creating after {timeout} s: {counts}"
        time.sleep(0.1)


def _check_no_overcommit(fleet: Fleet) -> None:
    used = dict(
        fleet.rows(
            "select host, sum(size) from volumes where status != 'error' and host is not null "
            "group by host"
        )
    )
    for name, (size, _) in FORTY.items():
        assert used.get(_pool(name), 0) <= size, (name, used)
    on_disk = {backend: len(images) for backend, images in fleet.volume_files().items()}
    for name, (size, _) in FORTY.items():
        assert on_disk[name] <= size, on_disk


def _error_messages(fleet: Fleet, project: str, volume_ids: list[str]) -> list[str]:
    response = httpx.get(
        f"{fleet.rest_url}/v3/{project}/messages", headers=_headers(project), timeout=30
    )
    assert response.status_code == 200, response.text
    by_volume = {m["resource_uuid"]: m["user_message"] for m in response.json()["messages"]}
    return [by_volume.get(volume_id, "") for volume_id in volume_ids]


@pytest.mark.parametrize("kill_one", [False, True], ids=["both-up", "one-killed"])
def test_two_schedulers_never_overcommit(tmp_path: Path, kill_one: bool) -> None:
    fleet = _fleet(tmp_path, FORTY, schedulers=2)
    fleet.start_all()
    try:
        project = _project()

        async def run() -> list[str]:
            burst = asyncio.ensure_future(_burst(fleet, project, 50))
            if kill_one:
                await asyncio.sleep(0.15)
                fleet.kill("scheduler-1")
            return await burst

        accepted = asyncio.run(run())
        counts = _settle(fleet, project, timeout=60)
        available = [
            v
            for (v,) in fleet.rows(
                "select id from volumes where project_id = ? and status = 'available'", project
            )
        ]
        errors = [
            v
            for (v,) in fleet.rows(
                "select id from volumes where project_id = ? and status = 'error'", project
            )
        ]
        print(f"\naccepted {len(accepted)} {counts}")
        assert len(accepted) == 50
        assert set(counts) <= {"available", "error"}
        assert (len(available), len(errors)) == (40, 10)
        _check_no_overcommit(fleet)
        for text in _error_messages(fleet, project, errors):
            assert "Could not find any available weighted backend." in text, text
            assert "CapacityFilter" in text, text
        if not kill_one:
            placers = {
                json.loads(decision)["scheduler"]
                for (decision,) in fleet.rows("select decision from volume_placements")
            }
            assert len(placers) == 2, placers
    finally:
        fleet.stop_all()
