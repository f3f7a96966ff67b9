"""The placement extension (``services.api.placement``): the view of a volume's kept
attempts, and the RPC through the edge with a real database: the owner's readers read it,
another project's volume is Cinder's 404, a caller without a role is refused by the rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from sqlmodel import select

from cindermesh.db import placements
from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import DEFAULT_VOLUME_TYPE, Volume, VolumeType
from cindermesh.placement import FilterOutcome, PlacementAttempt, WeighedOutcome
from cindermesh.settings import Settings
from cindermesh_pb.api.v1 import fault_pb2
from cindermesh_pb.api.v1 import placement_service_pb2 as pb
from services.api.edge.rpc import RPC_POLICIES, Edge
from services.api.placement.servicer import PLACEMENT_RULE, PlacementServicer
from services.api.placement.views import placement_view
from services.api.policy.defaults import DEFAULT_RULES, PROJECT_READER

A = "node1@file-1#file-1"
B = "node1@file-2#file-2"
VOLUME = "4d75b645-a478-48b1-97c8-503f64242f1a"

PLACED = PlacementAttempt(
    attempt=2,
    decided_at=dt.datetime(2026, 12, 2, 20, 15, 1, 123456),
    scheduler="127.0.0.1:18777",
    request={"size_gb": 1, "availability_zone": "nova", "extra_specs": {"k": "v"}},
    disabled=("node2@file-3",),
    filters=(
        FilterOutcome("AvailabilityZoneFilter", 2, (A, B), ()),
        FilterOutcome("CapacityFilter", 2, (A,), ((B, "Insufficient free space"),)),
    ),
    weighed=(WeighedOutcome(A, 1.0, {"CapacityWeigher": 1.0}),),
    chosen=A,
    result="placed",
    reason="",
    last_filter=None,
    retry_hosts=(B,),
    last_error="refused",
)
FAILED = dataclasses.replace(
    PLACED,
    attempt=1,
    filters=(FilterOutcome("CapabilitiesFilter", 2, (), ((A, "no"), (B, "no"))),),
    weighed=(),
    chosen=None,
    result="no_valid_backend",
    reason="No valid backend was found. No weighed backends available",
    last_filter="CapabilitiesFilter",
    retry_hosts=(),
    last_error="",
)


def _volume(**values: Any) -> Volume:
    fields: dict[str, Any] = {
        "id": VOLUME,
        "project_id": "p1",
        "user_id": "u1",
        "size": 1,
        "availability_zone": "nova",
        "volume_type_id": "t",
    }
    return Volume(**(fields | values))


def _json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


# -- the view -------------------------------------------------------------------------------


def test_view_of_a_placed_volume() -> None:
    view = _json(placement_view(_volume(host=A, status="available"), [FAILED, PLACED]))
    assert (view["volume_id"], view["host"], view["status"]) == (VOLUME, A, "available")
    failed, placed = view["attempts"]
    assert placed == {
        "attempt": 2,
        "decided_at": "2026-12-02T20:15:01.123456",
        "scheduler": "127.0.0.1:18777",
        "result": "placed",
        "reason": "",
        "chosen": A,
        "last_filter": None,
        "retry_hosts": [B],
        "last_error": "refused",
        "request": {"size_gb": 1.0, "availability_zone": "nova", "extra_specs": {"k": "v"}},
        "disabled": ["node2@file-3"],
        "filters": [
            {"name": "AvailabilityZoneFilter", "hosts_in": 2, "passed": [A, B], "rejected": []},
            {
                "name": "CapacityFilter",
                "hosts_in": 2,
                "passed": [A],
                "rejected": [{"host": B, "reason": "Insufficient free space"}],
            },
        ],
        "weighed": [{"host": A, "weight": 1.0, "weights": {"CapacityWeigher": 1.0}}],
    }
    assert (failed["result"], failed["chosen"], failed["last_filter"]) == (
        "no_valid_backend",
        None,
        "CapabilitiesFilter",
    )
    assert failed["filters"][0]["passed"] == []
    assert failed["weighed"] == []


def test_view_of_a_volume_never_placed() -> None:
    view = _json(placement_view(_volume(status="creating"), []))
    assert view == {"volume_id": VOLUME, "host": None, "status": "creating", "attempts": []}


# -- the policy -----------------------------------------------------------------------------


def test_the_rule_is_the_owners_readers() -> None:
    assert DEFAULT_RULES[PLACEMENT_RULE].check_str == PROJECT_READER
    assert RPC_POLICIES["PlacementServicer.GetVolumePlacement"] == (PLACEMENT_RULE, ())


# -- the RPC through the edge ---------------------------------------------------------------


class Aborted(Exception):
    pass


class FakeContext:
    """The few ServicerContext methods the edge uses, with the caller's token."""

    def __init__(self, token: str, version: str | None = None) -> None:
        self.metadata = [("x-auth-token", token)]
        if version is not None:
            self.metadata.append(("openstack-api-version", version))
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailers: dict[str, Any] = {}

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    async def send_initial_metadata(self, headers: list[tuple[str, str]]) -> None:
        pass

    async def abort(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...] = ()
    ) -> None:
        self.code, self.details = code, details
        self.trailers = dict(trailing_metadata)
        raise Aborted

    def fault(self) -> tuple[str, int, str]:
        status = status_pb2.Status.FromString(self.trailers["grpc-status-details-bin"])
        fault = fault_pb2.CinderFault()
        assert status.details[0].Unpack(fault)
        return fault.fault_key, fault.body.code, fault.body.message


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    async with database.session() as session:
        default = (
            await session.exec(select(VolumeType).where(VolumeType.name == DEFAULT_VOLUME_TYPE))
        ).one()
        session.add(_volume(volume_type_id=default.id, host=A, status="available"))
        await session.flush()
        await placements.record(session, VOLUME, FAILED)
        await placements.record(session, VOLUME, PLACED)
    yield database
    await database.close()


def _servicer(db: Database) -> PlacementServicer:
    return PlacementServicer(Edge(Settings()), db)


async def _get(db: Database, context: FakeContext, project: str = "p1") -> pb.VolumePlacement:
    request = pb.GetVolumePlacementRequest(project_id=project, volume_id=VOLUME)
    response = await _servicer(db).GetVolumePlacement(request, context)  # type: ignore[arg-type]
    return response.placement


@pytest.mark.parametrize("token", ["u1:p1", "u2:p1:reader", "admin:p2"])
async def test_the_owner_and_admins_read_it(db: Database, token: str) -> None:
    project = token.split(":")[1]
    placement = await _get(db, FakeContext(token), project)
    assert placement.volume_id == VOLUME and placement.host.string_value == A
    assert [a.result for a in placement.attempts] == ["no_valid_backend", "placed"]
    assert placement.attempts[0].last_filter.string_value == "CapabilitiesFilter"


@pytest.mark.parametrize("version", ["3.0", "3.27", "3.71"])
async def test_served_at_every_3x(db: Database, version: str) -> None:
    placement = await _get(db, FakeContext("u1:p1", f"volume {version}"))
    assert len(placement.attempts) == 2


async def test_another_projects_volume_is_not_found(db: Database) -> None:
    context = FakeContext("u9:p2")
    with pytest.raises(Aborted):
        await _get(db, context, "p2")
    assert context.code == grpc.StatusCode.NOT_FOUND
    assert context.fault() == ("itemNotFound", 404, f"Volume {VOLUME} could not be found.")


async def test_an_unknown_volume_is_not_found(db: Database) -> None:
    context = FakeContext("u1:p1")
    request = pb.GetVolumePlacementRequest(project_id="p1", volume_id="nope")
    with pytest.raises(Aborted):
        await _servicer(db).GetVolumePlacement(request, context)  # type: ignore[arg-type]
    assert context.fault() == ("itemNotFound", 404, "Volume nope could not be found.")


async def test_a_caller_without_a_role_is_refused(db: Database) -> None:
    context = FakeContext("u3:p1:")
    with pytest.raises(Aborted):
        await _get(db, context)
    assert context.fault() == (
        "forbidden",
        403,
        f"Policy doesn't allow {PLACEMENT_RULE} to be performed.",
    )
