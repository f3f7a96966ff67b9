"""The Lua filter's Cinder REST shaping, through a real Envoy and the fake VolumeService."""

from __future__ import annotations

import json
import re
import time

import httpx

from tests.unit.gateway.conftest import TRICKY_NAME, Gateway

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HIDDEN = (
    "x-cindermesh-http-status",
    "x-cindermesh-fault",
    "x-cindermesh-no-body",
    "grpc-status",
    "grpc-message",
    "grpc-accept-encoding",
)
PROJECT = "5ca1ab1e000000000000000000000001"


def assert_common_headers(response: httpx.Response, version: str = "3.0") -> None:
    assert REQUEST_ID.match(response.headers["x-openstack-request-id"])
    assert response.headers["openstack-api-version"] == f"volume {version}"
    assert response.headers["vary"] == "OpenStack-API-Version"
    for name in HIDDEN:
        assert name not in response.headers


def assert_fault(response: httpx.Response, status: int, key: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {key: {"code": status, "message": message}}
    assert_common_headers(response)


def test_create_answers_202_with_renamed_keys(client: httpx.Client) -> None:
    response = client.post(f"/v3/{PROJECT}/volumes", json={"volume": {"size": 1}})
    assert response.status_code == 202, response.text
    assert_common_headers(response)
    volume = response.json()["volume"]
    assert volume["os-vol-tenant-attr:tenant_id"] == "p1"
    assert volume["os-vol-host-attr:host"] == "cindermesh@file-1#file-1"
    assert volume["os-vol-mig-status-attr:migstat"] is None
    assert volume["os-vol-mig-status-attr:name_id"] is None
    assert not any(key.startswith("os_vol") for key in volume)


def test_renames_keys_in_lists_but_never_values(client: httpx.Client) -> None:
    detail = client.get("/v3/volumes/detail").json()["volumes"]
    assert [v["os-vol-host-attr:host"] for v in detail] == ["cindermesh@file-1#file-1"] * 2
    volume = client.get(f"/v3/{PROJECT}/volumes/v9").json()["volume"]
    assert volume["name"] == TRICKY_NAME
    assert "os-vol-host-attr:host" in volume


def test_summary_list_untouched(client: httpx.Client) -> None:
    response = client.get(f"/v3/{PROJECT}/volumes")
    assert response.status_code == 200
    assert response.json()["volumes"][0]["id"] == "v1"
    assert_common_headers(response)


def test_delete_has_no_body(client: httpx.Client) -> None:
    response = client.delete(f"/v3/{PROJECT}/volumes/v1")
    assert response.status_code == 202
    assert response.content == b""
    assert "content-type" not in response.headers
    assert_common_headers(response)


def test_fault_hint_replaces_body_trailers_only(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/missing")
    assert_fault(response, 404, "itemNotFound", "Volume missing could not be found.")


def test_fault_hint_in_initial_metadata(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/missing-initial")
    assert_fault(response, 404, "itemNotFound", "Volume missing could not be found.")


def test_unshaped_grpc_error_gets_cinder_shape(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/unshaped")
    assert_fault(response, 404, "itemNotFound", 'Volume "unshaped" could not be found.')
    response = client.get("/v3/volumes/conflict")
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": "busy"}}


def test_unknown_path_is_404(client: httpx.Client) -> None:
    response = client.get(f"/v3/{PROJECT}/no-such-thing")
    assert_fault(response, 404, "itemNotFound", "The resource could not be found.")


def test_known_path_wrong_method_is_405(client: httpx.Client) -> None:
    message = "The method specified is not allowed for this resource."
    for method, path in [
        ("PATCH", f"/v3/{PROJECT}/volumes/v1"),
        ("PUT", "/v3/volumes/v1"),
        ("DELETE", f"/v3/{PROJECT}/volumes"),
        ("POST", "/v3/volumes/detail"),
    ]:
        response = client.request(method, path, json={"volume": {}})
        assert_fault(response, 405, "badMethod", message)


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post(
        f"/v3/{PROJECT}/volumes",
        content=b'{"volume": {"size": 1,',
        headers={"content-type": "application/json"},
    )
    assert_fault(response, 400, "badRequest", "Malformed request body")


def test_type_error_is_readable_400(client: httpx.Client) -> None:
    response = client.post(f"/v3/{PROJECT}/volumes", json={"project_id": 5, "volume": {}})
    assert response.status_code == 400, response.text
    message = response.json()["badRequest"]["message"]
    assert message.startswith("Invalid input for field/attribute project_id. Value: 5."), message
    assert_common_headers(response)
    response = client.post(f"/v3/{PROJECT}/volumes", json={"volume": "x"})
    message = response.json()["badRequest"]["message"]
    assert message.startswith("Invalid input for field/attribute volume. Value: x."), message


def test_unknown_query_parameter_is_400(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/detail?bogus=1")
    assert response.status_code == 400, response.text
    assert response.json() == {
        "badRequest": {"code": 400, "message": "Invalid filters bogus are found in query options."}
    }
    assert_common_headers(response)


def test_request_id_generated(client: httpx.Client) -> None:
    first = client.get("/v3/volumes/v1")
    second = client.get("/v3/volumes/v1")
    rid = first.headers["x-openstack-request-id"]
    assert REQUEST_ID.match(rid)
    assert rid != second.headers["x-openstack-request-id"]
    assert first.json()["volume"]["metadata"]["request_id"] == rid


def test_valid_request_id_kept_invalid_replaced(client: httpx.Client) -> None:
    rid = "req-0b7c3a1e-0f6c-4d1b-9d2a-3b1c5e7f9a01"
    response = client.get("/v3/volumes/v1", headers={"x-openstack-request-id": rid})
    assert response.headers["x-openstack-request-id"] == rid
    assert response.json()["volume"]["metadata"]["request_id"] == rid
    for bad in ("req-0B7C3A1E-0F6C-4D1B-9D2A-3B1C5E7F9A01", "hello", "req-1"):
        response = client.get("/v3/volumes/v1", headers={"x-openstack-request-id": bad})
        assert response.headers["x-openstack-request-id"] != bad
        assert REQUEST_ID.match(response.headers["x-openstack-request-id"])


def test_request_id_on_local_errors(client: httpx.Client) -> None:
    rid = "req-0b7c3a1e-0f6c-4d1b-9d2a-3b1c5e7f9a02"
    response = client.get("/nothing/here", headers={"x-openstack-request-id": rid})
    assert response.headers["x-openstack-request-id"] == rid


def test_base_url_always_overwritten(client: httpx.Client, gateway: Gateway) -> None:
    response = client.get("/v3/volumes/v1", headers={"x-cindermesh-base-url": "http://evil"})
    port = gateway.settings.gateway.port
    assert response.json()["volume"]["links"][0]["href"] == f"http://127.0.0.1:{port}"
    response = client.get(
        "/v3/volumes/v1", headers={"x-forwarded-proto": "https", "host": "cinder.example"}
    )
    assert response.json()["volume"]["links"][0]["href"] == "https://cinder.example"


def test_api_version_echoed_unless_api_set_it(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/v1", headers={"openstack-api-version": "volume 3.64"})
    assert_common_headers(response, "3.64")
    response = client.get("/v3/volumes/nope/x", headers={"openstack-api-version": "volume 3.64"})
    assert_common_headers(response, "3.64")
    response = client.get("/v3/volumes/versioned", headers={"openstack-api-version": "volume 3.9"})
    assert response.headers["openstack-api-version"] == "volume 3.71"
    assert response.headers["vary"] == "OpenStack-API-Version"


def test_traceparent_sent_upstream_and_envoy_span_exported(
    client: httpx.Client, gateway: Gateway
) -> None:
    rid = "req-0b7c3a1e-0f6c-4d1b-9d2a-3b1c5e7f9a03"
    response = client.get("/v3/volumes/v1", headers={"x-openstack-request-id": rid})
    traceparent = response.json()["volume"]["metadata"]["traceparent"]
    assert re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$", traceparent)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if gateway.sink_path.exists():
            spans = [json.loads(line) for line in gateway.sink_path.read_text().splitlines()]
            mine = [s for s in spans if s["attributes"].get("openstack.request_id") == rid]
            if mine:
                assert mine[0]["service"] == "cindermesh-gateway"
                assert mine[0]["trace_id"] == traceparent.split("-")[1]
                return
        time.sleep(0.2)
    raise AssertionError("Envoy's span did not reach the sink")


def test_no_healthy_upstream_is_503(gateway: Gateway, tmp_path: object) -> None:
    """A gateway whose api is down answers Cinder's 503 shape."""
    from tests.unit.gateway.test_envoy_config import run_gateway

    with run_gateway(api_port=1) as url:
        response = httpx.get(f"{url}/v3/volumes/v1", timeout=5)
    assert response.status_code == 503
    assert response.json()["serviceUnavailable"]["code"] == 503
    assert_common_headers(response)


def test_request_id_when_client_sends_odd_x_request_id(client: httpx.Client) -> None:
    for value in ("not-a-uuid", "0B7C3A1E-0F6C-4D1B-9D2A-3B1C5E7F9A01"):
        response = client.get("/v3/volumes/v1", headers={"x-request-id": value})
        assert REQUEST_ID.match(response.headers["x-openstack-request-id"])
