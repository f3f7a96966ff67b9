"""Retype with migration (Cinder's generic migration, ``migration_policy=on-demand``) between
two file backends, each its own volume manager process, through Envoy: the data written into
the source image is read back at the destination (copied by the managers over gRPC, no shared
path), the row moves (host, type, ``migration_status`` ``success``), the source image goes,
the project's ``volumes``/``gigabytes`` usage is unchanged and the per-type usage moves; a
retype to a type no backend satisfies, or with ``never``, leaves the volume as it was (202,
as Cinder, whose scheduler puts the volume back)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.fleet import Fleet
from tests.e2e.helpers import headers, wait_for_status

PATTERN = b"cindermesh migrates this" * 4096
OFFSET = 3 * 1024 * 1024 + 5
GIB = 1024**3


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two file backends, ``file-1`` and ``file-2``, one manager each."""
    running = Fleet(tmp_path_factory.mktemp("migration"), backends=("file-1", "file-2"))
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


def _image(fleet: Fleet, backend: str, volume_id: str) -> Path:
    return fleet.data_dir / "volumes" / backend / f"volume-{volume_id}"


def _type(client: httpx.Client, base: str, hdrs: dict[str, str], name: str, backend: str) -> None:
    body = {"volume_type": {"name": name, "extra_specs": {"volume_backend_name": backend}}}
    response = client.post(f"{base}/types", headers=hdrs, json=body)
    assert response.status_code == 200, response.text


def _wait_pools(client: httpx.Client, base: str, hdrs: dict[str, str], count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pools = client.get(f"{base}/scheduler-stats/get_pools", headers=hdrs).json()
        if len(pools.get("pools", [])) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"not {count} pools: {pools}")


def _usage(client: httpx.Client, base: str, project: str, hdrs: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{base}/os-quota-sets/{project}?usage=true", headers=hdrs)
    assert response.status_code == 200, response.text
    return {k: v["in_use"] for k, v in response.json()["quota_set"].items() if isinstance(v, dict)}


def _retype(
    client: httpx.Client, url: str, hdrs: dict[str, str], new_type: str, policy: str
) -> None:
    body = {"os-retype": {"new_type": new_type, "migration_policy": policy}}
    response = client.post(f"{url}/action", headers=hdrs, json=body)
    assert response.status_code == 202, response.text


def _show(client: httpx.Client, url: str, hdrs: dict[str, str]) -> dict[str, Any]:
    volume: dict[str, Any] = client.get(url, headers=hdrs).json()["volume"]
    return volume


def test_retype_with_migration_moves_the_data(fleet: Fleet, project: str) -> None:
    admin = headers(project, user="admin", version="3.71")
    base = f"{fleet.rest_url}/v3/{project}"
    with httpx.Client(timeout=30) as client:
        _type(client, base, admin, f"src-{project[:8]}", "file-1")
        _type(client, base, admin, f"dst-{project[:8]}", "file-2")
        _type(client, base, admin, f"nowhere-{project[:8]}", "file-9")
        _wait_pools(client, base, admin, 2)
        body = {"volume": {"size": 1, "name": "moved", "volume_type": f"src-{project[:8]}"}}
        created = client.post(f"{base}/volumes", headers=admin, json=body)
        assert created.status_code == 202, created.text
        volume_id = created.json()["volume"]["id"]
        url = f"{base}/volumes/{volume_id}"
        wait_for_status(client, url, admin, "available")
        source = _show(client, url, admin)
        assert source["os-vol-host-attr:host"] == "fleet@file-1#file-1"
        with _image(fleet, "file-1", volume_id).open("r+b") as image:
            image.seek(OFFSET)
            image.write(PATTERN)
        usage_before = _usage(client, base, project, admin)

        # never: the move it would need is not allowed; nothing changes.
        _retype(client, url, admin, f"dst-{project[:8]}", "never")
        same = _show(client, url, admin)
        assert (same["volume_type"], same["status"]) == (f"src-{project[:8]}", "available")
        assert same["migration_status"] is None

        _retype(client, url, admin, f"dst-{project[:8]}", "on-demand")
        deadline = time.monotonic() + 60
        while (moved := _show(client, url, admin))["volume_type"] != f"dst-{project[:8]}":
            assert time.monotonic() < deadline, moved
            assert moved["status"] in ("retyping", "available"), moved
            time.sleep(0.1)
        assert moved["status"] == "available"
        assert moved["migration_status"] == "success"
        assert moved["os-vol-mig-status-attr:migstat"] == "success"
        assert moved["os-vol-host-attr:host"] == "fleet@file-2#file-2"
        for key in ("id", "size", "name", "user_id", "os-vol-tenant-attr:tenant_id"):
            assert moved[key] == source[key]
        destination = _image(fleet, "file-2", volume_id)
        assert destination.stat().st_size == GIB
        with destination.open("rb") as image:
            image.seek(OFFSET)
            assert image.read(len(PATTERN)) == PATTERN
        deadline = time.monotonic() + 10
        while _image(fleet, "file-1", volume_id).exists():
            assert time.monotonic() < deadline, "the source image is left"
            time.sleep(0.1)

        usage_after = _usage(client, base, project, admin)
        assert usage_after["volumes"] == usage_before["volumes"] == 1
        assert usage_after["gigabytes"] == usage_before["gigabytes"] == 1
        assert usage_before[f"gigabytes_src-{project[:8]}"] == 1
        assert usage_after[f"gigabytes_src-{project[:8]}"] == 0
        assert usage_after[f"gigabytes_dst-{project[:8]}"] == 1
        assert usage_after[f"volumes_dst-{project[:8]}"] == 1

        # A type no backend satisfies: Cinder answers 202 and its scheduler puts the volume
        # back as it was (NoValidBackend).
        _retype(client, url, admin, f"nowhere-{project[:8]}", "on-demand")
        time.sleep(0.5)
        kept = _show(client, url, admin)
        assert (kept["volume_type"], kept["status"]) == (f"dst-{project[:8]}", "available")
        assert kept["os-vol-host-attr:host"] == "fleet@file-2#file-2"
        assert _usage(client, base, project, admin) == usage_after

        # The migrated volume is the destination's now: it deletes it there.
        assert client.delete(url, headers=admin).status_code == 202
        deadline = time.monotonic() + 20
        while destination.exists() or client.get(url, headers=admin).status_code != 404:
            assert time.monotonic() < deadline, "the migrated volume was not deleted"
            time.sleep(0.1)
        assert fleet.volume_files() == {"file-1": [], "file-2": []}


def test_a_source_manager_down_ends_the_migration_as_error(fleet: Fleet, project: str) -> None:
    """The source manager killed before the retype: the copy cannot read the data, the
    migration ends as ``error`` with the volume where it was, of its old type, and nothing
    is left on the destination."""
    admin = headers(project, user="admin", version="3.71")
    base = f"{fleet.rest_url}/v3/{project}"
    with httpx.Client(timeout=30) as client:
        _type(client, base, admin, f"a-{project[:8]}", "file-1")
        _type(client, base, admin, f"b-{project[:8]}", "file-2")
        _wait_pools(client, base, admin, 2)
        body = {"volume": {"size": 1, "volume_type": f"a-{project[:8]}"}}
        volume_id = client.post(f"{base}/volumes", headers=admin, json=body).json()["volume"]["id"]
        url = f"{base}/volumes/{volume_id}"
        wait_for_status(client, url, admin, "available")
        fleet.kill("volume:file-1")
        try:
            _retype(client, url, admin, f"b-{project[:8]}", "on-demand")
            deadline = time.monotonic() + 30
            while (volume := _show(client, url, admin))["migration_status"] != "error":
                assert time.monotonic() < deadline, volume
                time.sleep(0.1)
            assert volume["status"] == "available"
            assert volume["volume_type"] == f"a-{project[:8]}"
            assert volume["os-vol-host-attr:host"] == "fleet@file-1#file-1"
            assert not _image(fleet, "file-2", volume_id).exists()
            assert _image(fleet, "file-1", volume_id).exists()
        finally:
            fleet.start("volume:file-1")


def test_a_destination_killed_mid_copy_ends_the_migration_as_error(
    fleet: Fleet, project: str
) -> None:
    """kill -9 of the destination manager while it copies (a 10 GiB sparse volume: its
    chunks take seconds to read): the volume stays ``retyping`` while it is down, and its
    restart ends the migration as ``error``, the volume where it was with its old type and
    data, the partial copy removed; asked again, it migrates."""
    admin = headers(project, user="admin", version="3.71")
    base = f"{fleet.rest_url}/v3/{project}"
    with httpx.Client(timeout=30) as client:
        _type(client, base, admin, f"k1-{project[:8]}", "file-1")
        _type(client, base, admin, f"k2-{project[:8]}", "file-2")
        _wait_pools(client, base, admin, 2)
        body = {"volume": {"size": 10, "volume_type": f"k1-{project[:8]}"}}
        volume_id = client.post(f"{base}/volumes", headers=admin, json=body).json()["volume"]["id"]
        url = f"{base}/volumes/{volume_id}"
        wait_for_status(client, url, admin, "available")
        with _image(fleet, "file-1", volume_id).open("r+b") as image:
            image.seek(OFFSET)
            image.write(PATTERN)
        _retype(client, url, admin, f"k2-{project[:8]}", "on-demand")
        deadline = time.monotonic() + 20
        while (volume := _show(client, url, admin))["migration_status"] != "migrating":
            assert time.monotonic() < deadline, volume
            time.sleep(0.02)
        fleet.kill("volume:file-2")
        try:
            time.sleep(0.5)
            held = _show(client, url, admin)
            assert (held["status"], held["migration_status"]) == ("retyping", "migrating")
        finally:
            fleet.start("volume:file-2")
        deadline = time.monotonic() + 30
        while (volume := _show(client, url, admin))["migration_status"] != "error":
            assert time.monotonic() < deadline, volume
            time.sleep(0.1)
        assert volume["status"] == "available"
        assert volume["volume_type"] == f"k1-{project[:8]}"
        assert volume["os-vol-host-attr:host"] == "fleet@file-1#file-1"
        assert not _image(fleet, "file-2", volume_id).exists()
        with _image(fleet, "file-1", volume_id).open("rb") as image:
            image.seek(OFFSET)
            assert image.read(len(PATTERN)) == PATTERN
        # And it migrates once asked again (once the restarted backend reports again).
        _wait_pools(client, base, admin, 2)
        _retype(client, url, admin, f"k2-{project[:8]}", "on-demand")
        deadline = time.monotonic() + 240
        while (moved := _show(client, url, admin))["migration_status"] not in ("success", "error"):
            assert time.monotonic() < deadline, moved
            time.sleep(0.2)
        assert moved["migration_status"] == "success", moved
        assert moved["volume_type"] == f"k2-{project[:8]}"
        with _image(fleet, "file-2", volume_id).open("rb") as image:
            image.seek(OFFSET)
            assert image.read(len(PATTERN)) == PATTERN
