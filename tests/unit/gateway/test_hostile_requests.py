"""The gateway's refusals of hostile requests, through a real Envoy and the fake VolumeService:
each one a 4xx in Cinder's error shape that never reaches the api, and no gRPC or Envoy text
in any error the api did not shape. (Errors Envoy makes carry no microversion header.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.unit.gateway.conftest import Gateway
from tests.unit.gateway.test_lua_filter import REQUEST_ID, assert_fault

LIMIT = 114688
TOO_LARGE = "Request is too large."
NOT_FOUND = "The resource could not be found."
GENERIC_400 = (
    "The server could not comply with the request since it is either malformed or otherwise "
    "incorrect."
)
INTERNAL = "The server has either erred or is incapable of performing the requested operation."


def raw_request(
    gateway: Gateway, head: bytes, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Sends bytes as they are (httpx refuses some) and reads one HTTP/1.1 answer."""
    port = gateway.settings.gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        top, _, rest = data.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        headers = {k.lower(): v for k, v in fields.items()}
        while len(rest) < int(headers.get("content-length", "0")):
            rest += conn.recv(65536)
    return int(lines[0].split()[1]), headers, rest


def assert_raw_fault(
    answer: tuple[int, dict[str, str], bytes], status: int, key: str, message: str
) -> None:
    code, headers, body = answer
    assert code == status, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {key: {"code": status, "message": message}}
    assert REQUEST_ID.match(headers["x-openstack-request-id"])


def test_valid_utf8_escaped_or_not_goes_on_to_the_api(client: httpx.Client) -> None:
    """Text that is not UTF-8 is the api's to refuse (tests/e2e/test_hostile_input.py)."""
    assert client.get("/v3/volumes/%c3%a9t%C3%A9").json()["volume"]["id"] == "été"
    assert client.get("/v3/volumes/detail?name=%e2%82%ac").status_code == 200


def test_body_over_the_limit_is_413_with_or_without_length(client: httpx.Client) -> None:
    body = json.dumps({"volume": {"size": 1, "name": "x" * LIMIT}}).encode()

    def chunks(size: int) -> Iterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    json_type = {"content-type": "application/json"}
    assert_fault(
        client.post("/v3/volumes", content=body, headers=json_type), 413, "overLimit", TOO_LARGE
    )
    # Without a Content-Length, however it is cut (the transcoder's own count is not exact).
    for size in (1024, 8192, 65536, len(body)):
        for _ in range(3):
            response = client.post("/v3/volumes", content=chunks(size), headers=json_type)
            assert_fault(response, 413, "overLimit", TOO_LARGE, None)
    exact = b'{"volume": {"size": 1, "name": "' + b"x" * (LIMIT - 35) + b'"}}'
    assert len(exact) == LIMIT
    assert client.post("/v3/volumes", content=exact).status_code == 202
    assert client.post("/v3/volumes", content=iter([exact[:1000], exact[1000:]])).status_code == 202


def test_ten_mib_body_gets_an_answer_not_a_reset(client: httpx.Client) -> None:
    body = b'{"volume": {"size": 1, "name": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    response = client.post(
        "/v3/volumes", content=body, headers={"content-type": "application/json"}
    )
    assert_fault(response, 413, "overLimit", TOO_LARGE, None)
    response = client.post("/v3/volumes", content=iter([body[: 1 << 20], body[1 << 20 :]]))
    assert_fault(response, 413, "overLimit", TOO_LARGE, None)


def test_non_json_body_of_any_size_is_415(client: httpx.Client) -> None:
    """The media type is refused first, whatever the size (Cinder's size check comes first)."""
    for content in (b"x" * (LIMIT + 1), iter([b"x" * (LIMIT + 1)])):
        response = client.post(
            "/v3/volumes", content=content, headers={"content-type": "text/plain"}
        )
        assert_fault(response, 415, "badMediaType", "Unsupported Content-Type", None)


def test_grpc_call_through_the_rest_edge_is_415(client: httpx.Client) -> None:
    for path in ("/cindermesh.api.v1.VolumeService/GetVolume", "/grpc.health.v1.Health/Check"):
        response = client.post(
            path, content=b"\0\0\0\0\0", headers={"content-type": "application/grpc"}
        )
        assert_fault(response, 415, "badMediaType", "Unsupported Content-Type", None)


def test_only_headers_the_api_reads_go_on(client: httpx.Client) -> None:
    response = client.get(
        "/v3/volumes/echo-headers",
        headers={"x-pad": "a" * 20000, "cookie": "c=1", "grpc-timeout": "1n", "x-data-bin": "!"},
    )
    assert response.status_code == 200, response.text
    received = set(response.json()["volume"]["id"].split(","))
    assert {"x-openstack-request-id", "x-cindermesh-base-url", "x-envoy-original-path"} <= received
    assert not {"x-pad", "cookie", "grpc-timeout", "x-data-bin", "user-agent"} & received


def test_headers_within_envoys_limit_reach_the_api_over_it_are_431(
    client: httpx.Client, gateway: Gateway
) -> None:
    """The api accepts any header Envoy does (GRPC_MAX_METADATA_BYTES): Envoy's limit is the one;
    a long URI counts in it (431, where Cinder's eventlet says 414)."""
    limit = gateway.settings.gateway.max_request_headers_kb * 1024
    near = "p" * (limit - 1024)
    assert client.get("/v3/volumes/v1", headers={"x-auth-token": "u:" + near}).status_code == 200
    assert client.get("/v3/volumes/detail?name=" + "n" * (limit - 1024)).status_code == 200
    response = client.get("/v3/volumes/v1", headers={"x-auth-token": "u:" + "p" * limit})
    assert_fault(response, 431, "computeFault", "Request header fields are too large.", None)
    answer = raw_request(gateway, b"GET /v3/volumes/detail?name=" + b"n" * limit + b" HTTP/1.1")
    assert_raw_fault(answer, 431, "computeFault", "Request header fields are too large.")


def test_request_head_over_envoys_limit_is_431(gateway: Gateway) -> None:
    head = b"GET /v3/volumes/v1 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (40 * 1024)
    answer = raw_request(gateway, head)
    assert_raw_fault(answer, 431, "computeFault", "Request header fields are too large.")


@pytest.mark.parametrize("bad", [b"X-Auth-Token: u1\x00", b"X-Auth-Token: u1\x01", b"Host: \xff"])
def test_header_the_codec_refuses_is_a_generic_400(gateway: Gateway, bad: bytes) -> None:
    head = (
        b"GET /v3/volumes/v1 HTTP/1.1\r\n"
        + (b"" if bad.startswith(b"Host") else b"Host: x\r\n")
        + bad
    )
    assert_raw_fault(raw_request(gateway, head), 400, "badRequest", GENERIC_400)


def test_server_errors_never_show_grpc_text(client: httpx.Client) -> None:
    assert_fault(client.get("/v3/volumes/internal"), 500, "computeFault", INTERNAL, None)


def test_forwarded_proto_is_http_or_https(client: httpx.Client) -> None:
    for proto, scheme in [("https", "https"), ("HTTPS, http", "https"), ("javascript", "http")]:
        response = client.get("/v3/volumes/v1", headers={"x-forwarded-proto": proto, "host": "h"})
        assert response.json()["volume"]["links"][0]["href"] == f"{scheme}://h"
