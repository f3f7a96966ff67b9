"""``cindermesh status`` on a real SQLite database, with health answers and a scheduler's view
given by the test (the e2e test asks the real processes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cindermesh.db.engine import open_database
from cindermesh.db.models import Service
from cindermesh.settings import Settings, load_settings
from cindermesh.status import (
    SERVING,
    PoolsView,
    Status,
    format_status,
    gather_status,
    probe_health,
    resolve_replicas,
    status_json,
)
from tests.unit.rows import ago

FRESH = "cindermesh@file-1"
STALE = "cindermesh@file-2"


@pytest.fixture
async def settings(tmp_path: Path) -> AsyncIterator[Settings]:
    """Two schedulers on one machine and two registered backends: file-1 with a heartbeat
    2 s old, file-2 with one 5 minutes old."""
    settings = load_settings(
        {"CINDERMESH_DATA_DIR": str(tmp_path), "CINDERMESH_SCHEDULER__REPLICAS": "2"}
    )
    db = open_database(settings)
    await db.create_schema()
    async with db.session() as session:
        session.add(Service(host=FRESH, address="127.0.0.1:18780", availability_zone="nova"))
        session.add(
            Service(
                host=STALE,
                address="127.0.0.1:18781",
                availability_zone="nova",
                updated_at=ago(300),
                disabled=True,
            )
        )
    async with db.session() as session:
        fresh = await session.get(Service, FRESH)
        assert fresh is not None
        fresh.updated_at = ago(2)
        session.add(fresh)
    await db.close()
    yield settings


def answering(down: set[str]) -> tuple[list[str], object]:
    asked: list[str] = []

    async def probe(address: str) -> str:
        asked.append(address)
        return "unreachable: UNAVAILABLE" if address in down else SERVING

    return asked, probe


POOL = {
    "total_capacity_gb": 1000,
    "free_capacity_gb": 990.5,
    "allocated_capacity_gb": 9.5,
    "timestamp": "2026-12-03T05:00:00",
}


def pools_of(*backends: str, state: str = "up") -> object:
    async def pools(addresses: Sequence[str]) -> PoolsView:
        assert addresses == ["127.0.0.1:18777", "127.0.0.1:18778"]
        view = {f"{b}#{b.partition('@')[2]}": dict(POOL, backend_state=state) for b in backends}
        return PoolsView(pools=view, scheduler=addresses[0])

    return pools


async def test_everything_up(settings: Settings) -> None:
    asked, probe = answering(set())
    status = await gather_status(
        settings,
        probe=probe,  # type: ignore[arg-type]
        pools=pools_of(FRESH, STALE),  # type: ignore[arg-type]
    )
    assert sorted(asked) == sorted(
        [
            "127.0.0.1:18776",
            "127.0.0.1:18777",
            "127.0.0.1:18778",
            "127.0.0.1:18780",
            "127.0.0.1:18781",
        ]
    )
    by_name = {s.name: s for s in status.services}
    assert [s.kind for s in status.services] == [
        "api",
        "scheduler",
        "scheduler",
        "volume",
        "volume",
    ]
    assert by_name["scheduler-1"].address == "127.0.0.1:18778"
    assert by_name[FRESH].up and by_name[FRESH].heartbeat_recent
    # The stale heartbeat is down whatever its health says (Cinder's service_down_time).
    assert not by_name[STALE].up and by_name[STALE].health == SERVING
    assert by_name[STALE].disabled
    assert not status.ok
    pool = status.pools[0]
    assert (pool.backend, pool.pool, pool.up) == (FRESH, "file-1", True)
    assert (pool.total_capacity_gb, pool.free_capacity_gb, pool.allocated_capacity_gb) == (
        1000,
        990.5,
        9.5,
    )
    assert pool.last_report == "2026-12-03T05:00:00"


async def test_a_dead_manager_and_its_silent_backend_are_down(settings: Settings) -> None:
    _, probe = answering({"127.0.0.1:18780"})
    status = await gather_status(
        settings,
        probe=probe,  # type: ignore[arg-type]
        pools=pools_of(),  # type: ignore[arg-type]
    )
    by_name = {s.name: s for s in status.services}
    assert by_name[FRESH].health == "unreachable: UNAVAILABLE" and not by_name[FRESH].up
    assert [(p.backend, p.pool, p.up) for p in status.pools] == [
        (FRESH, None, False),
        (STALE, None, False),
    ]
    text = format_status(status)
    assert f"{FRESH}  down: no pool reported to the scheduler" in text
    assert "DOWN: 4 of the above" in text
    document = json.loads(status_json(status))
    assert document["ok"] is False
    assert {s["name"]: s["up"] for s in document["services"]}[FRESH] is False


async def test_a_backend_whose_storage_is_down(settings: Settings) -> None:
    _, probe = answering(set())
    status = await gather_status(
        settings,
        probe=probe,  # type: ignore[arg-type]
        pools=pools_of(FRESH, STALE, state="down"),  # type: ignore[arg-type]
    )
    assert [p.up for p in status.pools] == [False, False]
    assert "backend_state: down" in status.pools[0].reason


async def test_no_scheduler_and_no_database_are_errors(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CINDERMESH_DATA_DIR": str(tmp_path),
            "CINDERMESH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db",
        }
    )

    async def no_pools(addresses: Sequence[str]) -> PoolsView:
        return PoolsView(error="no scheduler answered GetPools: 127.0.0.1:18777 unreachable")

    _, probe = answering(set())
    status = await gather_status(settings, probe=probe, pools=no_pools)  # type: ignore[arg-type]
    assert [e.split(":")[0] for e in status.errors] == [
        "database sqlite+aiosqlite",
        "no scheduler answered GetPools",
    ]
    assert not status.ok and status.pools == ()
    assert "error: no scheduler answered GetPools" in format_status(status)


def test_all_up_says_so() -> None:
    assert format_status(Status(services=(), pools=(), pools_from="a:1")).endswith("all up")


async def test_probe_asks_a_real_health_service() -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        address = f"127.0.0.1:{port}"
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert await probe_health(address) == SERVING
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await probe_health(address) == "NOT_SERVING"
    finally:
        await server.stop(None)
    assert (await probe_health(address, timeout=1.0)).startswith("unreachable: UNAVAILABLE")


async def test_a_dns_name_stands_for_every_address_it_has() -> None:
    assert await resolve_replicas("10.0.0.7:18777") == ["10.0.0.7:18777"]
    assert await resolve_replicas("localhost:18777") == ["127.0.0.1:18777"]  # IPv4 preferred
    assert await resolve_replicas("no-such-host.invalid:1") == ["no-such-host.invalid:1"]


async def test_fewer_replicas_behind_a_name_than_configured_is_an_error(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CINDERMESH_DATA_DIR": str(tmp_path),
            "CINDERMESH_SCHEDULER__HOST": "localhost",
            "CINDERMESH_SCHEDULER__REPLICAS": "2",
        }
    )
    await _empty_schema(settings)

    async def pools(addresses: Sequence[str]) -> PoolsView:
        assert addresses == ["127.0.0.1:18777"]
        return PoolsView(scheduler=addresses[0])

    _, probe = answering(set())
    status = await gather_status(settings, probe=probe, pools=pools)  # type: ignore[arg-type]
    assert [s.address for s in status.services if s.kind == "scheduler"] == ["127.0.0.1:18777"]
    assert status.errors == ("scheduler: 1 of 2 replicas at localhost:18777",)
    assert not status.ok


async def _empty_schema(settings: Settings) -> None:
    db = open_database(settings)
    await db.create_schema()
    await db.close()
