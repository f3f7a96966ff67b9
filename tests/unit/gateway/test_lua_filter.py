"""The gateway's REST shaping (Lua filter, transcoder, local_reply_config), through a real Envoy
and the fake VolumeService."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.gateway_api import read_public_api
from services.api.edge.errors import MAX_MESSAGE_CHARS
from tests.unit.gateway.conftest import TRICKY_NAME, Gateway

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HIDDEN = (
    "x-cindermesh-http-status",
    "x-cindermesh-fault",
    "x-cindermesh-no-body",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-accept-encoding",
)
PROJECT = "5ca1ab1e000000000000000000000001"


#: The version header is the api's (the fake api sends none): not checked.
ANY = "any"


def assert_common_headers(response: httpx.Response, version: str | None = ANY) -> None:
    """The request id, no gRPC header; the microversion echo (None: Envoy's own error, which
    has none, as Cinder's errors before routing)."""
    assert REQUEST_ID.match(response.headers["x-openstack-request-id"])
    if version == ANY:
        pass
    elif version is None:
        assert "openstack-api-version" not in response.headers
    else:
        assert response.headers["openstack-api-version"] == f"volume {version}"
        assert response.headers["vary"] == "OpenStack-API-Version"
    for name in HIDDEN:
        assert name not in response.headers


def assert_fault(
    response: httpx.Response, status: int, key: str, message: str, version: str | None = ANY
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {key: {"code": status, "message": message}}
    assert_common_headers(response, version)


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


def test_typed_fault_becomes_cinder_body_trailers_only(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/missing")
    assert_fault(response, 404, "itemNotFound", "Volume missing could not be found.")


def test_typed_fault_after_initial_metadata(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/missing-initial")
    assert_fault(response, 404, "itemNotFound", "Volume missing could not be found.")


def test_typed_fault_sets_the_status_the_grpc_code_does_not(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/precondition")
    assert response.status_code == 412
    assert response.content == b""
    assert "content-type" not in response.headers
    response = client.get("/v3/volumes/over-limit")
    assert response.status_code == 413
    assert response.json() == {
        "overLimit": {"code": 413, "message": 'Quota "x}]}" exceeded', "retryAfter": "0"}
    }


def test_a_huge_echoed_message_stays_a_400(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/huge-1")
    assert response.status_code == 400, response.text
    message = response.json()["badRequest"]["message"]
    assert message.startswith("Invalid: \U0001f642") and " ... " in message
    assert len(message) <= MAX_MESSAGE_CHARS
    assert_common_headers(response)


def test_grpc_error_without_typed_fault_is_a_500_without_its_text(
    client: httpx.Client,
) -> None:
    """The api sends a CinderFault with every error: one without is gRPC's own failure."""
    internal = "The server has either erred or is incapable of performing the requested operation."
    for volume_id, text in [("unshaped", "unshaped"), ("conflict", "busy"), ("internal", "UTF")]:
        response = client.get(f"/v3/volumes/{volume_id}")
        assert_fault(response, 500, "computeFault", internal, version=None)
        assert text not in response.text


def test_unknown_path_is_404(client: httpx.Client) -> None:
    response = client.get(f"/v3/{PROJECT}/no-such-thing")
    assert_fault(response, 404, "itemNotFound", "The resource could not be found.", None)


def test_known_path_wrong_method_is_404_as_cinder(client: httpx.Client) -> None:
    """Cinder's router has no 405: a method a path does not take is an unknown resource."""
    for method, path in [
        ("PATCH", f"/v3/{PROJECT}/volumes/v1"),
        ("POST", "/v3/volumes/v1"),
        ("DELETE", f"/v3/{PROJECT}/volumes"),
        ("DELETE", f"/v3/{PROJECT}/volumes/"),
        ("POST", "/"),
        ("DELETE", "/v3/"),
    ]:
        response = client.request(method, path, json={"volume": {}})
        assert_fault(response, 404, "itemNotFound", "The resource could not be found.", None)
        assert "allow" not in response.headers


def test_every_declared_route_is_served(client: httpx.Client) -> None:
    """Each path and method the descriptor declares reaches the api, never Envoy's 404 (the fake
    api implements only some: the others answer gRPC's UNIMPLEMENTED, a 500)."""
    not_found = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}
    for route in read_public_api(DESCRIPTOR_SET).routes:
        path = re.sub(r"\{[^}]+\}", "v1", route.template)
        for method in route.methods:
            response = client.request(method, path, json={})
            assert not response.content or response.json() != not_found, (method, path)


def test_versions_keys_renamed_and_status_kept(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 300
    assert_common_headers(response)
    (version,) = response.json()["versions"]
    assert version["id"] == "root"
    assert version["media-types"] == [{"base": "application/json", "type": "t"}]
    assert "media_types" not in version
    assert version["links"] == [{"href": "h", "rel": "self"}]  # unset optional type: absent
    for path in ("/v3", "/v3/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json()["versions"][0]["id"] == "v3"


def test_non_json_body_is_415(client: httpx.Client) -> None:
    for content_type in ("text/plain", "application/xml; charset=utf-8"):
        response = client.post(
            "/v3/volumes", content=b"size=1", headers={"content-type": content_type}
        )
        assert_fault(response, 415, "badMediaType", "Unsupported Content-Type", None)
    # Empty body, JSON types, unknown paths and wrong methods are not a media type matter.
    response = client.post("/v3/volumes", content=b"", headers={"content-type": "text/plain"})
    assert response.status_code == 202
    for content_type in (
        "application/json; charset=UTF-8",
        "application/vnd.openstack.volume+json",
    ):
        response = client.post("/v3/volumes", content=b"{}", headers={"content-type": content_type})
        assert response.status_code == 202
    # Whatever the path: the gateway has no route table.
    response = client.post("/nowhere", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_chunked_non_json_body_is_415(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"size="
        yield b"1"

    response = client.post("/v3/volumes", content=chunks(), headers={"content-type": "text/plain"})
    assert_fault(response, 415, "badMediaType", "Unsupported Content-Type", None)


def test_version_header_on_gateway_errors(client: httpx.Client) -> None:
    """Envoy's own errors echo no microversion (the api parses it), except Cinder's 3.0 on a
    malformed body that asked for none."""
    for asked in ("volume 3.50", "volume 3.x", "compute 2.1"):
        response = client.get("/nowhere", headers={"openstack-api-version": asked})
        assert response.status_code == 404
        assert "openstack-api-version" not in response.headers
    response = client.post(
        "/v3/volumes", content=b"x", headers={"content-type": "application/json"}
    )
    assert_fault(response, 400, "badRequest", "Malformed request body")


def test_bodies_the_transcoder_cannot_parse_are_malformed(client: httpx.Client) -> None:
    """A body that is not JSON, or not of the request's shape (a wrong type where the contract
    has a message, a list where it has none), is Cinder's "Malformed request body"."""
    for body in [
        b'{"volume": {"size": 1,',
        b'{"project_id": 5, "volume": {}}',
        b'{"volume": "x"}',
        b'{"volume": [1]}',
        b"[1]",
    ]:
        response = client.post(
            f"/v3/{PROJECT}/volumes", content=body, headers={"content-type": "application/json"}
        )
        assert_fault(response, 400, "badRequest", "Malformed request body")


def test_a_query_the_transcoder_cannot_map_is_a_malformed_url(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/detail?limit=1&limit=2")
    assert_fault(response, 400, "badRequest", "Malformed request url", None)


def test_unknown_query_parameter_reaches_the_api(client: httpx.Client) -> None:
    """The api refuses unknown filters itself (it reads x-envoy-original-path)."""
    response = client.get("/v3/volumes/detail?bogus=1")
    assert response.status_code == 200, response.text


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


def test_api_version_header_is_the_apis(client: httpx.Client) -> None:
    """The gateway parses no microversion: the api's echo passes, Envoy's errors have none."""
    response = client.get("/v3/volumes/nope/x", headers={"openstack-api-version": "volume 3.64"})
    assert_common_headers(response, None)
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
    assert_common_headers(response, None)


def test_request_id_when_client_sends_odd_x_request_id(client: httpx.Client) -> None:
    for value in ("not-a-uuid", "0B7C3A1E-0F6C-4D1B-9D2A-3B1C5E7F9A01"):
        response = client.get("/v3/volumes/v1", headers={"x-request-id": value})
        assert REQUEST_ID.match(response.headers["x-openstack-request-id"])


def test_the_body_top_level_keys_reach_the_api(client: httpx.Client) -> None:
    """The transcoder drops the keys no field takes; the gateway tells the api every top-level
    key (as its JSON text), whatever the nested values hold, and nothing for other bodies."""
    body = '{"volume": {"name": "a,\\"b}", "x": [1, {"y": 2}]}, "extra" : [{}], "q\\"k": 1}'
    response = client.post(
        f"/v3/{PROJECT}/volumes", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert json.loads(response.json()["volume"]["metadata"]["body_keys"]) == [
        "volume",
        "extra",
        'q"k',
    ]
    forged = {"x-cindermesh-body-keys": '["volume"]'}
    response = client.get("/v3/volumes/v1", headers=forged)
    assert response.json()["volume"]["metadata"]["body_keys"] == ""
    response = client.post(
        f"/v3/{PROJECT}/volumes", content=" {} ", headers={"content-type": "application/json"}
    )
    assert response.json()["volume"]["metadata"]["body_keys"] == "[]"


def test_a_key_no_header_can_carry_stands_as_dots(client: httpx.Client) -> None:
    """A control character or a byte beyond ASCII in a key would make the header (and so the
    call to the api) invalid; such a key is told as ``"..."``."""
    body = '{"volume": {}, "\u00e9t\u00e9": 1, "tab\\u0009": 2, "ok": 3}'.encode()
    response = client.post(
        f"/v3/{PROJECT}/volumes", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert json.loads(response.json()["volume"]["metadata"]["body_keys"]) == [
        "volume",
        "...",
        "tab\t",
        "ok",
    ]
