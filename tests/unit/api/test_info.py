"""Zones and services: heartbeat age, host filter, microversion-gated fields."""

from __future__ import annotations

import datetime as dt

from google.protobuf.json_format import MessageToDict

from cindermesh.db.models import Service
from services.api.edge.auth import ADMIN_ROLES, Caller
from services.api.edge.microversion import Microversion
from services.api.edge.request_context import RequestContext
from services.api.info.operations import (
    ServiceEntry,
    host_matches,
    is_up,
    service_view,
    zone_states,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)


def _ctx(minor: int) -> RequestContext:
    return RequestContext(
        Caller("admin", "p", ADMIN_ROLES), Microversion(3, minor), "http://x", True
    )


def _service(host: str, zone: str, age: float) -> Service:
    return Service(
        host=host, address="a", availability_zone=zone, updated_at=NOW - dt.timedelta(seconds=age)
    )


def test_up_within_service_down_time() -> None:
    assert is_up(NOW - dt.timedelta(seconds=60), NOW)
    assert not is_up(NOW - dt.timedelta(seconds=61), NOW)


def test_host_filter_matches_backends_and_pools() -> None:
    assert host_matches("node1@file-1", "node1")
    assert host_matches("node1@file-1", "node1@file-1")
    assert not host_matches("node10@file-1", "node1")


def test_zone_available_when_one_backend_is_up() -> None:
    services = [_service("a@1", "z1", 300), _service("a@2", "z1", 5), _service("b@1", "z2", 300)]
    assert zone_states(services, ["z3", "z1"], NOW) == [("z1", True), ("z2", False), ("z3", False)]


def test_service_fields_by_binary_and_version() -> None:
    volume = ServiceEntry("cinder-volume", "a@1", "nova", True, NOW, backend_state="up")
    scheduler = ServiceEntry("cinder-scheduler", "a", "nova", False, None)
    assert MessageToDict(service_view(_ctx(0), volume), preserving_proto_field_name=True) == {
        "binary": "cinder-volume",
        "host": "a@1",
        "zone": "nova",
        "status": "enabled",
        "state": "up",
        "updated_at": "2026-01-01T12:00:00.000000",
        "disabled_reason": None,
        "replication_status": "disabled",
        "active_backend_id": None,
        "frozen": False,
    }
    at_49 = MessageToDict(service_view(_ctx(49), volume), preserving_proto_field_name=True)
    assert at_49["cluster"] is None and at_49["backend_state"] == "up"
    shown = MessageToDict(service_view(_ctx(49), scheduler), preserving_proto_field_name=True)
    assert shown["state"] == "down" and shown["updated_at"] is None
    assert "backend_state" not in shown and "frozen" not in shown and shown["cluster"] is None
