"""The gateway's refusals of hostile requests, through a real Envoy and the fake VolumeService:
each one a 4xx in Cinder's error shape that never reaches the api, and no gRPC or Envoy text
in any error the api did not shape."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from cindermesh.settings import GRPC_MAX_METADATA_BYTES
from tests.unit.gateway.conftest import Gateway
from tests.unit.gateway.test_lua_filter import PROJECT, REQUEST_ID, assert_fault

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


def test_invalid_utf8_in_path_is_404_or_405(client: httpx.Client) -> None:
    for path in (f"/v3/{PROJECT}/volumes/%ff%fe", "/v3/volumes/%c3", "/v3/%ed%a0%80/volumes"):
        assert_fault(client.get(path), 404, "itemNotFound", NOT_FOUND)
    response = client.patch("/v3/volumes/%ff", json={})
    assert_fault(
        response, 405, "badMethod", "The method specified is not allowed for this resource."
    )
    assert response.headers["allow"] == "DELETE, GET, PUT"
    # Valid UTF-8, escaped or not, goes on to the api.
    assert client.get("/v3/volumes/%c3%a9t%C3%A9").json()["volume"]["id"] == "été"


def test_invalid_utf8_in_query_is_400(client: httpx.Client) -> None:
    message = "Invalid input received: the query string is not valid UTF-8."
    for query in ("name=%ff", "%fe=1", "name=%f0%9f%98", "name=%c0%af"):
        response = client.get(f"/v3/volumes/detail?{query}")
        assert_fault(response, 400, "badRequest", message)
    assert client.get("/v3/volumes/detail?name=%e2%82%ac").status_code == 200


def test_invalid_utf8_in_headers_the_api_reads(client: httpx.Client) -> None:
    response = client.get("/v3/volumes/v1", headers={"x-auth-token": b"u1:\xff"})
    assert_fault(
        response, 401, "unauthorized", "The request you have made requires authentication."
    )
    for name, shown in [
        ("openstack-api-version", "OpenStack-API-Version"),
        ("if-match", "If-Match"),
    ]:
        response = client.get("/v3/volumes/v1", headers={name: b"volume 3.\xff"})
        message = f"Invalid input received: the {shown} header is not valid UTF-8."
        assert response.status_code == 400, response.text
        assert response.json() == {"badRequest": {"code": 400, "message": message}}


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
            assert_fault(response, 413, "overLimit", TOO_LARGE)
    exact = b'{"volume": {"size": 1, "name": "' + b"x" * (LIMIT - 35) + b'"}}'
    assert len(exact) == LIMIT
    assert client.post("/v3/volumes", content=exact).status_code == 202
    assert client.post("/v3/volumes", content=iter([exact[:1000], exact[1000:]])).status_code == 202


def test_ten_mib_body_gets_an_answer_not_a_reset(client: httpx.Client) -> None:
    body = b'{"volume": {"size": 1, "name": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    response = client.post(
        "/v3/volumes", content=body, headers={"content-type": "application/json"}
    )
    assert_fault(response, 413, "overLimit", TOO_LARGE)
    response = client.post("/v3/volumes", content=iter([body[: 1 << 20], body[1 << 20 :]]))
    assert_fault(response, 413, "overLimit", TOO_LARGE)


def test_non_json_body_over_the_limit_is_413(client: httpx.Client) -> None:
    response = client.post(
        "/v3/volumes", content=iter([b"x" * (LIMIT + 1)]), headers={"content-type": "text/plain"}
    )
    assert_fault(response, 413, "overLimit", TOO_LARGE)


def test_grpc_call_through_the_rest_edge_is_415(client: httpx.Client) -> None:
    for path in ("/cindermesh.api.v1.VolumeService/GetVolume", "/grpc.health.v1.Health/Check"):
        response = client.post(
            path, content=b"\0\0\0\0\0", headers={"content-type": "application/grpc"}
        )
        assert_fault(response, 415, "badMediaType", "Unsupported Content-Type")


def test_only_headers_the_api_reads_go_on(client: httpx.Client) -> None:
    response = client.get(
        "/v3/volumes/echo-headers",
        headers={"x-pad": "a" * 20000, "cookie": "c=1", "grpc-timeout": "1n", "x-data-bin": "!"},
    )
    assert response.status_code == 200, response.text
    received = set(response.json()["volume"]["id"].split(","))
    assert {"x-openstack-request-id", "x-cindermesh-base-url", "x-envoy-original-path"} <= received
    assert not {"x-pad", "cookie", "grpc-timeout", "x-data-bin", "user-agent"} & received


def test_headers_the_api_could_refuse_are_431_a_long_path_414(client: httpx.Client) -> None:
    response = client.get(
        "/v3/volumes/v1", headers={"x-auth-token": "u:" + "p" * GRPC_MAX_METADATA_BYTES}
    )
    assert_fault(response, 431, "computeFault", "Request header fields are too large.")
    response = client.get("/v3/volumes/detail?name=" + "n" * GRPC_MAX_METADATA_BYTES)
    assert_fault(response, 414, "computeFault", "The request URI is too long.")
    assert client.get("/v3/volumes/detail?name=" + "n" * 4000).status_code == 200


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
    assert_fault(client.get("/v3/volumes/internal"), 500, "computeFault", INTERNAL)


def test_forwarded_proto_is_http_or_https(client: httpx.Client) -> None:
    for proto, scheme in [("https", "https"), ("HTTPS, http", "https"), ("javascript", "http")]:
        response = client.get("/v3/volumes/v1", headers={"x-forwarded-proto": proto, "host": "h"})
        assert response.json()["volume"]["links"][0]["href"] == f"{scheme}://h"
