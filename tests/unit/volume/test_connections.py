"""The manager's connection operations on a real database and the real file driver: the
driver's connection info with what the manager adds (Cinder's ``_parse_connection_options``:
QoS specs with Cinder's own per-GB cases, access mode, encrypted, cacheable, discard), the
refusals (unknown volume, another backend, a connector of the wrong types) and a driver's
failure with Cinder's messages; then the same through the gRPC edge and the api's client,
whose answer has Cinder's JSON types."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cindermesh.db.engine import Database
from cindermesh.db.models import (
    QosSpecs,
    QosSpecsItem,
    Volume,
    VolumeAdminMetadata,
    VolumeStatus,
    VolumeType,
    VolumeTypeEncryption,
    VolumeTypeExtraSpec,
)
from cindermesh.errors import BackendFailed, BackendUnavailable, InvalidInput, NotFound
from cindermesh.settings import BackendSettings
from cindermesh_pb.volume.v1 import volume_manager_pb2_grpc
from services.api.clients import (
    INITIALIZE_FAILED_MESSAGE,
    TERMINATE_FAILED_MESSAGE,
    VolumeManagerClients,
)
from services.api.schema import JsonValue
from services.volume.connections import (
    Connections,
    VolumeOptions,
    cacheable,
    parse_connection_options,
    parse_connector,
)
from services.volume.create_flow import FlowServices
from services.volume.drivers.base import ConnectionInfo, RbdConnectionData
from services.volume.drivers.file import FileDriver
from services.volume.errors import (
    ConnectionFailed,
    DriverError,
    InvalidConnector,
    VolumeNotFound,
    WrongBackend,
)
from services.volume.manager import Manager
from services.volume.servicer import VolumeManagerServicer

from .helpers import BACKEND_HOST, add_volume, reload, update_row

CONNECTOR: dict[str, JsonValue] = {
    "host": "compute-1",
    "ip": "192.0.2.10",
    "initiator": "iqn.1993-08.org.debian:01:compute-1",
    "multipath": False,
}

# Cinder's test_connection.py per-GB cases (sizes 3, 1 and 100), as the database keeps the
# values: strings.
PER_GB = {
    "write_iops_sec_per_gb": "30",
    "read_iops_sec_per_gb": "7700",
    "total_iops_sec_per_gb": "300000",
    "read_bytes_sec_per_gb": "10",
    "write_bytes_sec_per_gb": "40",
    "total_bytes_sec_per_gb": "1048576",
}
PER_GB_WITH_MIN = {
    "write_iops_sec_per_gb_min": "800",
    "write_iops_sec_per_gb": "30",
    "read_iops_sec_per_gb_min": "23100",
    "read_iops_sec_per_gb": "7700",
    "total_iops_sec_per_gb_min": "900000",
    "total_iops_sec_per_gb": "300000",
    "total_iops_sec_max": "15000000",
    "read_bytes_sec_per_gb_min": "30",
    "read_bytes_sec_per_gb": "10",
    "write_bytes_sec_per_gb_min": "120",
    "write_bytes_sec_per_gb": "40",
    "total_bytes_sec_per_gb_min": "3145728",
    "total_bytes_sec_per_gb": "1048576",
}
PER_GB_CASES = [
    (
        3,
        PER_GB,
        {
            "write_iops_sec": 90,
            "read_iops_sec": 23100,
            "total_iops_sec": 900000,
            "read_bytes_sec": 30,
            "write_bytes_sec": 120,
            "total_bytes_sec": 3145728,
        },
    ),
    (
        1,
        PER_GB_WITH_MIN,
        {
            "write_iops_sec": 800,
            "read_iops_sec": 23100,
            "total_iops_sec": 900000,
            "read_bytes_sec": 30,
            "write_bytes_sec": 120,
            "total_bytes_sec": 3145728,
        },
    ),
    (
        100,
        PER_GB_WITH_MIN,
        {
            "write_iops_sec": 3000,
            "read_iops_sec": 770000,
            "total_iops_sec": 15000000,
            "read_bytes_sec": 1000,
            "write_bytes_sec": 4000,
            "total_bytes_sec": 104857600,
        },
    ),
]


class TestDriver(FileDriver):
    """The file driver whose connection calls can be made to fail, or to answer as RBD; it
    records the connectors its ``terminate_connection`` was given."""

    __test__ = False

    def __init__(self, backend: BackendSettings, data_dir: Path) -> None:
        super().__init__(backend, data_dir)
        self.fail: str | None = None
        self.rbd = False
        self.terminated: list[Mapping[str, str] | None] = []

    async def initialize_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> ConnectionInfo:
        if self.fail is not None:
            raise DriverError(self.fail)
        if not self.rbd:
            return await super().initialize_connection(volume_id, connector)
        data = RbdConnectionData(
            name=f"volumes/volume-{volume_id}",
            hosts=("192.0.2.1", "192.0.2.2"),
            ports=("6789", "6789"),
            cluster_name="ceph",
            auth_enabled=True,
            auth_username="cinder",
            secret_type="ceph",
            secret_uuid=None,
            volume_id=volume_id,
        )
        return ConnectionInfo(driver_volume_type="rbd", data=data)

    async def terminate_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> None:
        if self.fail is not None:
            raise DriverError(self.fail)
        self.terminated.append(connector)


@pytest.fixture
async def file_driver(tmp_path: Path) -> TestDriver:
    driver = TestDriver(BackendSettings(name="file-1"), tmp_path / "images")
    await driver.do_setup()
    return driver


@pytest.fixture
def connections(db: Database, file_driver: TestDriver) -> Connections:
    return Connections(db, file_driver, BACKEND_HOST)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


async def _volume(db: Database, driver: FileDriver, size: int = 1) -> Volume:
    volume = await add_volume(db, size=size, status=VolumeStatus.AVAILABLE)
    await driver.create_volume(volume.id, size)
    return volume


async def _typed(
    db: Database,
    volume: Volume,
    qos: tuple[str, Mapping[str, str | None]] | None = None,
    extra_specs: Mapping[str, str] | None = None,
    encrypted: bool = False,
) -> None:
    """Gives the volume a type of its own with these QoS specs (consumer, keys), extra specs
    and encryption."""
    async with db.session() as session:
        volume_type = VolumeType(name=f"type-{volume.id}")
        if qos is not None:
            specs = QosSpecs(name=f"qos-{volume.id}", consumer=qos[0])
            session.add(specs)
            for key, value in qos[1].items():
                session.add(QosSpecsItem(specs_id=specs.id, key=key, value=value))
            volume_type.qos_specs_id = specs.id
        session.add(volume_type)
        for key, value in (extra_specs or {}).items():
            session.add(VolumeTypeExtraSpec(volume_type_id=volume_type.id, key=key, value=value))
        if encrypted:
            session.add(
                VolumeTypeEncryption(
                    volume_type_id=volume_type.id,
                    provider="luks",
                    control_location="front-end",
                    cipher="aes-xts-plain64",
                    key_size=256,
                )
            )
    await update_row(db, volume.id, volume_type_id=volume_type.id)


async def _admin_metadata(db: Database, volume: Volume, metadata: Mapping[str, str]) -> None:
    async with db.session() as session:
        for key, value in metadata.items():
            session.add(VolumeAdminMetadata(volume_id=volume.id, key=key, value=value))


async def _data(connections: Connections, volume: Volume) -> dict[str, object]:
    info = await connections.initialize(volume.id, CONNECTOR)
    data = info["data"]
    assert isinstance(data, dict)
    return data


# -- initialize: what the driver says and what the manager adds ------------------------------


async def test_local_connection_info(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    volume = await _volume(db, file_driver)
    info = await connections.initialize(volume.id, CONNECTOR)
    assert info == {
        "driver_volume_type": "local",
        "data": {
            "device_path": str(file_driver.path(volume.id)),
            "volume_id": volume.id,
            "qos_specs": None,
            "access_mode": "rw",
            "encrypted": False,
            "cacheable": False,
            "enforce_multipath": False,
        },
    }
    assert file_driver.path(volume.id).is_file()


@pytest.mark.parametrize(
    ("consumer", "expected"),
    [
        ("front-end", {"key1": "value1", "key2": "value2"}),
        ("both", {"key1": "value1", "key2": "value2"}),
        ("back-end", None),
    ],
)
async def test_qos_specs_only_for_the_front_end(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    consumer: str,
    expected: dict[str, str] | None,
) -> None:
    volume = await _volume(db, file_driver)
    await _typed(db, volume, qos=(consumer, {"key1": "value1", "key2": "value2"}))
    assert (await _data(connections, volume))["qos_specs"] == expected


@pytest.mark.parametrize("consumer", ["front-end", "both"])
@pytest.mark.parametrize(("size", "specs", "expected"), PER_GB_CASES)
async def test_qos_per_gb_as_cinder_computes_it(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    consumer: str,
    size: int,
    specs: dict[str, str],
    expected: dict[str, int],
) -> None:
    volume = await _volume(db, file_driver, size=size)
    await _typed(db, volume, qos=(consumer, specs))
    qos = (await _data(connections, volume))["qos_specs"]
    assert qos == expected
    assert isinstance(qos, dict) and all(type(v) is int for v in qos.values())


async def test_qos_max_without_per_gb_is_left_as_given(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    volume = await _volume(db, file_driver, size=10)
    specs = {"read_iops_sec_max": "500", "write_iops_sec_per_gb": "5", "write_iops_sec_max": "20"}
    await _typed(db, volume, qos=("front-end", specs))
    qos = (await _data(connections, volume))["qos_specs"]
    assert qos == {"read_iops_sec_max": "500", "write_iops_sec": 20}


@pytest.mark.parametrize("value", ["many", None, "1.5"])
async def test_qos_per_gb_not_an_integer_fails(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    value: str | None,
) -> None:
    volume = await _volume(db, file_driver)
    await _typed(db, volume, qos=("both", {"total_iops_sec_per_gb": value}))
    with pytest.raises(ConnectionFailed, match="total_iops_sec_per_gb"):
        await connections.initialize(volume.id, CONNECTOR)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, "rw"),
        ({"readonly": "True"}, "ro"),
        ({"readonly": "False"}, "rw"),
        ({"readonly": "true"}, "rw"),
        ({"attached_mode": "ro"}, "ro"),
        ({"attached_mode": "rw", "readonly": "True"}, "rw"),
    ],
)
async def test_access_mode(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    metadata: dict[str, str],
    expected: str,
) -> None:
    volume = await _volume(db, file_driver)
    await _admin_metadata(db, volume, metadata)
    assert (await _data(connections, volume))["access_mode"] == expected


@pytest.mark.parametrize("encrypted", [True, False])
async def test_encrypted_is_the_types_encryption(
    db: Database, file_driver: TestDriver, connections: Connections, encrypted: bool
) -> None:
    volume = await _volume(db, file_driver)
    await _typed(db, volume, encrypted=encrypted)
    assert (await _data(connections, volume))["encrypted"] is encrypted


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ({"cacheable": "<is> True"}, True),
        ({"cacheable": "<is> False"}, False),
        ({"cacheable": "True"}, False),
        ({}, False),
    ],
)
async def test_cacheable_is_the_types_extra_spec(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    specs: dict[str, str],
    expected: bool,
) -> None:
    volume = await _volume(db, file_driver)
    await _typed(db, volume, extra_specs=specs)
    assert (await _data(connections, volume))["cacheable"] is expected


@pytest.mark.parametrize(
    ("spec", "driver_value", "expected"),
    [
        ("<is> True", None, True),
        ("<is> True", True, True),
        ("<is> True", False, False),
        (None, True, False),
        (None, None, False),
    ],
)
def test_cacheable_with_a_drivers_value(
    spec: str | None, driver_value: bool | None, expected: bool
) -> None:
    specs = {} if spec is None else {"cacheable": spec}
    assert cacheable(specs, driver_value) is expected


def _options(encrypted: bool = False) -> VolumeOptions:
    return VolumeOptions(
        size_gb=1,
        admin_metadata={},
        qos_consumer=None,
        qos_specs={},
        extra_specs={},
        encrypted=encrypted,
    )


def test_the_drivers_encrypted_and_discard_are_kept() -> None:
    data = {"encrypted": False, "discard": True, "cacheable": True}
    added = parse_connection_options(data, _options(encrypted=True), parse_connector({}))
    assert added["encrypted"] is False
    assert added["discard"] is True
    assert added["cacheable"] is False


def test_enforce_multipath_is_the_connectors() -> None:
    connector = parse_connector({"enforce_multipath": True})
    assert parse_connection_options({}, _options(), connector)["enforce_multipath"] is True


async def test_rbd_connection_keeps_the_drivers_discard(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    file_driver.rbd = True
    volume = await _volume(db, file_driver)
    info = await connections.initialize(volume.id, CONNECTOR)
    assert info["driver_volume_type"] == "rbd"
    data = info["data"]
    assert isinstance(data, dict)
    assert data["discard"] is True
    assert data["ports"] == ["6789", "6789"]


# -- initialize: refusals and failures -------------------------------------------------------


async def test_unknown_volume(connections: Connections) -> None:
    with pytest.raises(VolumeNotFound, match=r"^Volume missing could not be found\.$"):
        await connections.initialize("missing", CONNECTOR)


@pytest.mark.parametrize("host", ["node2@file-1#file-1", "node1@file-2#file-2", None])
async def test_volume_not_on_this_backend(
    db: Database, file_driver: TestDriver, connections: Connections, host: str | None
) -> None:
    volume = await _volume(db, file_driver)
    await update_row(db, volume.id, host=host)
    with pytest.raises(WrongBackend):
        await connections.initialize(volume.id, CONNECTOR)


@pytest.mark.parametrize(
    "connector",
    [{"host": 7}, {"initiator": ["iqn"]}, {"multipath": "yes"}, {"enforce_multipath": 1}],
)
async def test_connector_of_the_wrong_types(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    connector: dict[str, JsonValue],
) -> None:
    volume = await _volume(db, file_driver)
    with pytest.raises(InvalidConnector, match=r"^Invalid input received: Connector "):
        await connections.initialize(volume.id, connector)


async def test_a_connector_with_nulls_and_unknown_keys_is_taken(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    volume = await _volume(db, file_driver)
    connector = {"host": "h", "initiator": None, "wwpns": ["50014380"], "nvme_hostid": "x"}
    info = await connections.initialize(volume.id, connector)
    assert info["driver_volume_type"] == "local"


async def test_driver_failure_has_cinders_message(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    volume = await add_volume(db, status=VolumeStatus.AVAILABLE)  # no image on the backend
    with pytest.raises(ConnectionFailed) as raised:
        await connections.initialize(volume.id, CONNECTOR)
    assert raised.value.message == (
        f"Driver initialize connection failed (error: volume {volume.id} has no image at "
        f"{file_driver.path(volume.id)})."
    )


async def test_initialize_is_a_span(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    spans: InMemorySpanExporter,
) -> None:
    volume = await _volume(db, file_driver)
    await connections.initialize(volume.id, CONNECTOR)
    found = [s for s in spans.get_finished_spans() if s.name == "volume.initialize_connection"]
    assert len(found) == 1 and found[0].attributes is not None
    assert dict(found[0].attributes) == {
        "volume.id": volume.id,
        "connector.host": "compute-1",
        "connection.driver_volume_type": "local",
    }


async def test_failed_initialize_span_is_an_error(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    spans: InMemorySpanExporter,
) -> None:
    volume = await _volume(db, file_driver)
    file_driver.fail = "cluster gone"
    with pytest.raises(ConnectionFailed, match=r"\(error: cluster gone\)\.$"):
        await connections.initialize(volume.id, CONNECTOR)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "volume.initialize_connection"]
    assert span.status.status_code == trace.StatusCode.ERROR


# -- terminate ---------------------------------------------------------------------------------


async def test_terminate_calls_the_driver_with_the_connector(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    volume = await _volume(db, file_driver)
    await connections.terminate(volume.id, CONNECTOR, force=False)
    assert file_driver.terminated == [dict(CONNECTOR)]


@pytest.mark.parametrize(("force", "calls"), [(False, []), (True, [None])])
async def test_terminate_without_a_connector(
    db: Database,
    file_driver: TestDriver,
    connections: Connections,
    force: bool,
    calls: list[None],
) -> None:
    volume = await _volume(db, file_driver)
    await connections.terminate(volume.id, None, force=force)
    assert file_driver.terminated == calls


async def test_terminate_refusals_and_failure(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    with pytest.raises(VolumeNotFound):
        await connections.terminate("missing", CONNECTOR, force=False)
    volume = await _volume(db, file_driver)
    await update_row(db, volume.id, host="node2@file-1#file-1")
    with pytest.raises(WrongBackend):
        await connections.terminate(volume.id, CONNECTOR, force=False)
    await update_row(db, volume.id, host=f"{BACKEND_HOST}#file-1")
    file_driver.fail = "busy"
    with pytest.raises(ConnectionFailed) as raised:
        await connections.terminate(volume.id, CONNECTOR, force=True)
    assert raised.value.message == "Terminate volume connection failed: busy"
    assert file_driver.terminated == []


async def test_connections_change_no_row(
    db: Database, file_driver: TestDriver, connections: Connections
) -> None:
    volume = await _volume(db, file_driver)
    await _admin_metadata(db, volume, {"readonly": "True"})
    before = await reload(db, volume.id)
    await connections.initialize(volume.id, CONNECTOR)
    await connections.terminate(volume.id, CONNECTOR, force=False)
    after = await reload(db, volume.id)
    assert before is not None and after is not None
    assert after.model_dump() == before.model_dump()


# -- through the gRPC edge and the api's client ------------------------------------------------


@pytest.fixture
async def address(services: FlowServices, connections: Connections) -> AsyncIterator[str]:
    manager = Manager(services, BACKEND_HOST, connections=connections)
    server = grpc.aio.server()
    volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(
        VolumeManagerServicer(manager), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.fixture
async def clients() -> AsyncIterator[VolumeManagerClients]:
    made = VolumeManagerClients()
    yield made
    await made.close()


async def test_client_gets_cinders_json_types(
    db: Database, file_driver: TestDriver, address: str, clients: VolumeManagerClients
) -> None:
    file_driver.rbd = True
    volume = await _volume(db, file_driver, size=3)
    await _typed(db, volume, qos=("front-end", {**PER_GB, "note": "3"}))
    info = await clients.initialize_connection(address, volume.id, {**CONNECTOR, "n": 2})
    data = info["data"]
    assert isinstance(data, dict)
    assert data["ports"] == ["6789", "6789"]
    assert data["hosts"] == ["192.0.2.1", "192.0.2.2"]
    assert data["auth_enabled"] is True and data["discard"] is True
    assert data["encrypted"] is False and data["enforce_multipath"] is False
    assert data["secret_uuid"] is None
    assert data["qos_specs"] == {**PER_GB_CASES[0][2], "note": "3"}
    qos = data["qos_specs"]
    assert isinstance(qos, dict) and type(qos["total_bytes_sec"]) is int


async def test_client_terminates(
    db: Database, file_driver: TestDriver, address: str, clients: VolumeManagerClients
) -> None:
    volume = await _volume(db, file_driver)
    await clients.terminate_connection(address, volume.id, {"host": "h"}, force=False)
    await clients.terminate_connection(address, volume.id, None, force=False)
    await clients.terminate_connection(address, volume.id, None, force=True)
    await clients.terminate_connection(address, volume.id, {}, force=False)
    assert file_driver.terminated == [{"host": "h"}, None, {}]


async def test_client_errors(
    db: Database, file_driver: TestDriver, address: str, clients: VolumeManagerClients
) -> None:
    with pytest.raises(NotFound, match=r"^Volume missing could not be found\.$"):
        await clients.initialize_connection(address, "missing", CONNECTOR)
    volume = await _volume(db, file_driver)
    with pytest.raises(
        InvalidInput, match=r"^Invalid input received: Connector host must be a string\.$"
    ):
        await clients.initialize_connection(address, volume.id, {"host": 1})
    file_driver.fail = "cluster gone"
    with pytest.raises(BackendFailed) as initialize:
        await clients.initialize_connection(address, volume.id, CONNECTOR)
    assert initialize.value.message == INITIALIZE_FAILED_MESSAGE
    assert initialize.value.reason == "Driver initialize connection failed (error: cluster gone)."
    with pytest.raises(BackendFailed) as terminate:
        await clients.terminate_connection(address, volume.id, CONNECTOR, force=False)
    assert terminate.value.message == TERMINATE_FAILED_MESSAGE
    assert terminate.value.reason == "Terminate volume connection failed: cluster gone"


async def test_client_of_an_unreachable_manager(clients: VolumeManagerClients) -> None:
    with socket.socket() as bound:  # a port of ours nobody listens on
        bound.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{bound.getsockname()[1]}"
        with pytest.raises(BackendUnavailable):
            await clients.initialize_connection(address, "v", CONNECTOR)
        with pytest.raises(BackendUnavailable):
            await clients.terminate_connection(address, "v", None, force=True)
