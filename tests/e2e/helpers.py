"""REST helpers for end-to-end tests: plain HTTP through Envoy, as any Cinder client sends it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests import postgres
from tests.e2e.cluster import Cluster


def headers(project: str, user: str = "u1", version: str | None = None) -> dict[str, str]:
    result = {"X-Auth-Token": f"{user}:{project}", "Content-Type": "application/json"}
    if version:
        result["OpenStack-API-Version"] = f"volume {version}"
    return result


def wait_for_status(
    client: httpx.Client,
    url: str,
    hdrs: dict[str, str],
    wanted: str,
    timeout: float = 15.0,
    resource: str = "volume",
) -> dict[str, Any]:
    """Polls ``url`` until its ``resource`` (``volume``, ``snapshot``) is in ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url, headers=hdrs)
        body: dict[str, Any] = response.json()
        if response.status_code == 200 and body[resource]["status"] == wanted:
            shown: dict[str, Any] = body[resource]
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{resource} never became {wanted}: {response.status_code} {body}")
        time.sleep(0.02)


def wait_for_404(
    client: httpx.Client, url: str, hdrs: dict[str, str], timeout: float = 15.0
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url, headers=hdrs)
        if response.status_code == 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def db_rows(cluster: Cluster, query: str, *params: str) -> list[tuple[Any, ...]]:
    """Reads the real database the services write (``?`` placeholders, either engine)."""
    return postgres.rows(cluster.database_url, query, *params)


def volume_files(cluster: Cluster) -> list[Path]:
    root = cluster.data_dir / "volumes"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
