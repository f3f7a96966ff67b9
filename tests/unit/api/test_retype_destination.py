"""Where a retype migrates a volume (``services.api.volume_actions.retype.destination``): a pool
of another backend that satisfies the new type, has room, is up and is not the source's
storage under another name; the most free first; none: None (Cinder's NoValidBackend)."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.api.volume_actions.retype import destination

SOURCE = "node@file-1#file-1"


def _pool(name: str, **capabilities: Any) -> scheduler_pb2.PoolInfo:
    backend = name.partition("@")[2].partition("#")[0]
    values = {"volume_backend_name": backend, "free_capacity_gb": 100.0} | capabilities
    return scheduler_pb2.PoolInfo(name=name, capabilities=ParseDict(values, Struct()))


POOLS = [
    _pool(SOURCE),
    _pool("node@file-2#file-2", free_capacity_gb=50.0),
    _pool("node@file-3#file-3", free_capacity_gb=80.0),
]


def test_the_most_free_pool_of_another_backend() -> None:
    assert destination(POOLS, SOURCE, {}, 1) == "node@file-3#file-3"


def test_the_type_decides() -> None:
    specs = {"volume_backend_name": "file-2"}
    assert destination(POOLS, SOURCE, specs, 1) == "node@file-2#file-2"
    prefixed = {"capabilities:volume_backend_name": "file-2"}
    assert destination(POOLS, SOURCE, prefixed, 1) == "node@file-2#file-2"
    assert destination(POOLS, SOURCE, {"volume_backend_name": "file-1"}, 1) is None
    assert destination(POOLS, SOURCE, {"volume_backend_name": "nowhere"}, 1) is None


def test_room_state_and_storage() -> None:
    assert destination(POOLS, SOURCE, {}, 60) == "node@file-3#file-3"
    assert destination(POOLS, SOURCE, {}, 90) is None
    down = [POOLS[0], _pool("node@file-2#file-2", backend_state="down")]
    assert destination(down, SOURCE, {}, 1) is None
    infinite = [POOLS[0], _pool("node@file-2#file-2", free_capacity_gb="infinite")]
    assert destination(infinite, SOURCE, {}, 5000) == "node@file-2#file-2"
    same = [
        _pool(SOURCE, location_info="ceph:conf:fsid:cinder:volumes"),
        _pool("node@rbd-2#rbd-2", location_info="ceph:conf:fsid:cinder:volumes"),
    ]
    assert destination(same, SOURCE, {}, 1) is None
