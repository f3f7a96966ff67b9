"""Version discovery and the gateway's own errors, against the real product and Cinder's golden
responses (tests/golden): status codes, headers and JSON shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.gateway_api import read_public_api
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NO_SUCH_VOLUME = "00000000-0000-0000-0000-000000000000"


def golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    return data


def assert_headers(response: httpx.Response, version: str | None = "3.0") -> None:
    assert response.headers["content-type"] == "application/json"
    assert REQUEST_ID.match(response.headers["x-openstack-request-id"])
    if version is None:
        assert "openstack-api-version" not in response.headers
        assert "vary" not in response.headers
    else:
        assert response.headers["openstack-api-version"] == f"volume {version}"
        assert response.headers["vary"] == "OpenStack-API-Version"
    for hidden in ("x-cindermesh-fault", "x-cindermesh-http-status", "grpc-status"):
        assert hidden not in response.headers


def assert_fault(response: httpx.Response, status: int, key: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {key: {"code": status, "message": message}}


def with_self_href(body: dict[str, Any], href: str) -> dict[str, Any]:
    """The golden document with our self link (Cinder's was its own host and port)."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    for version in copy["versions"]:
        for link in version["links"]:
            if link["rel"] == "self":
                link["href"] = href
    return copy


# -- version discovery ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"), [("/", 300), ("/v3", 200), ("/v3/", 200)], ids=["root", "v3", "v3-slash"]
)
def test_versions_document_without_token(cluster: Cluster, path: str, status: int) -> None:
    expected = golden("versions-root")
    response = httpx.get(cluster.rest_url + path, headers={"Accept": "application/json"})
    assert response.status_code == status == (300 if path == "/" else 200)
    assert expected["status"] == 300
    assert_headers(response)
    body = response.json()
    assert body == with_self_href(expected["body"], f"{cluster.rest_url}/v3/")
    (version,) = body["versions"]
    assert version["version"] == "3.71"
    assert [link.get("type") for link in version["links"]] == ["text/html", None]


def test_versions_ignore_any_token_and_follow_the_host(cluster: Cluster) -> None:
    for token in ("", "garbage", "u1:p1", "admin:p1"):
        response = httpx.get(
            f"{cluster.rest_url}/v3/",
            headers={"X-Auth-Token": token, "Host": "cinder.example:8776"},
        )
        assert response.status_code == 200, response.text
        links = response.json()["versions"][0]["links"]
        assert links[1] == {"href": "http://cinder.example:8776/v3/", "rel": "self"}
    response = httpx.get(cluster.rest_url + "/", headers={"X-Forwarded-Proto": "https"})
    assert response.json()["versions"][0]["links"][1]["href"].startswith("https://")


def test_versions_echo_the_requested_microversion(cluster: Cluster) -> None:
    response = httpx.get(cluster.rest_url + "/", headers={"OpenStack-API-Version": "volume 3.50"})
    assert response.status_code == 300
    assert_headers(response, "3.50")
    response = httpx.get(cluster.rest_url + "/v3", headers={"OpenStack-API-Version": "volume 3.9x"})
    assert response.status_code == 400
    assert_headers(response, None)


def test_versions_path_takes_no_other_method_or_query(cluster: Cluster) -> None:
    response = httpx.post(cluster.rest_url + "/v3/", json={})
    assert_fault(response, 404, "itemNotFound", "The resource could not be found.")
    assert "allow" not in response.headers
    response = httpx.get(cluster.rest_url + "/?foo=1")
    assert_fault(response, 400, "badRequest", "Invalid filters foo are found in query options.")


# -- the gateway's own errors -----------------------------------------------------------------


def test_unknown_path_is_404_item_not_found(cluster: Cluster, project: str) -> None:
    for path in (f"/v3/{project}/no-such-thing", "/v3/no-such-thing", "/v2/volumes", "/v3/x/y/z"):
        response = httpx.get(cluster.rest_url + path, headers=headers(project))
        assert_fault(response, 404, "itemNotFound", "The resource could not be found.")
        assert_headers(response, None)  # as Cinder's (golden err-unknown-path)
        assert "allow" not in response.headers


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


def test_wrong_method_on_every_known_path_is_404_as_cinder(cluster: Cluster, project: str) -> None:
    """Every REST path the descriptor declares answers 404 to a method it lacks: Cinder's router
    has no 405 (golden err-method-not-allowed)."""
    assert golden("err-method-not-allowed")["status"] == 404
    api = read_public_api(DESCRIPTOR_SET)
    assert any(r.template == "/v3/{project_id}/volumes/{volume_id}" for r in api.routes)
    for route in api.routes:
        path = _concrete(route.template)
        # Routes overlap (/volumes/detail is also /volumes/{volume_id}): allowed is their union.
        allowed = {
            m
            for other in api.routes
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(other.template)), path)
            for m in other.methods
        }
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - allowed):
            response = httpx.request(
                method, cluster.rest_url + path, headers=headers(project), json={"volume": {}}
            )
            assert_fault(response, 404, "itemNotFound", "The resource could not be found.")
            assert "allow" not in response.headers, path
            assert_headers(response, None)


def test_malformed_json_as_cinder(cluster: Cluster, project: str) -> None:
    expected = golden("err-malformed-json")
    response = httpx.post(
        f"{cluster.rest_url}/v3/{project}/volumes",
        headers=headers(project),
        content=expected["request"]["body"].encode(),
    )
    assert response.status_code == expected["status"]
    assert response.json() == expected["body"]
    assert_headers(response)


@pytest.mark.parametrize(
    "body",
    [{"volume": 5}, {"volume": True}, {"volume": "x"}, {"volume": [1]}, [1]],
    ids=["int", "bool", "string", "list", "root-list"],
)
def test_bodies_not_of_the_contracts_shape_are_malformed(
    cluster: Cluster, project: str, body: object
) -> None:
    """The transcoder cannot map them onto the request message: Cinder's message for a body it
    cannot read (Cinder's jsonschema would name the field; the gateway does not parse texts)."""
    response = httpx.post(
        f"{cluster.rest_url}/v3/{project}/volumes",
        headers=headers(project),
        content=json.dumps(body).encode(),
    )
    assert_fault(response, 400, "badRequest", "Malformed request body")
    assert_headers(response)


def test_non_json_body_is_415_but_empty_body_is_not(cluster: Cluster, project: str) -> None:
    url = f"{cluster.rest_url}/v3/{project}/volumes"
    token = {"X-Auth-Token": f"u1:{project}"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = httpx.post(
            url, headers={**token, "Content-Type": content_type}, content=b'{"volume": {"size": 1}}'
        )
        assert_fault(response, 415, "badMediaType", "Unsupported Content-Type")
        assert_headers(response, None)
    # Cinder only looks at the type of a non-empty body; an empty one reaches the api (400).
    response = httpx.post(url, headers={**token, "Content-Type": "text/plain"}, content=b"")
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"badRequest"}
    # Both JSON media types Cinder accepts, with parameters.
    for content_type in (
        "application/json; charset=UTF-8",
        "application/vnd.openstack.volume+json",
    ):
        response = httpx.post(url, headers={**token, "Content-Type": content_type}, content=b"{")
        assert_fault(response, 400, "badRequest", "Malformed request body")


def test_empty_body_on_every_body_route_is_400(cluster: Cluster, project: str) -> None:
    """Cinder answers an empty body 500 (golden err-empty-body); we answer 400 badRequest."""
    assert golden("err-empty-body")["status"] == 500
    api = read_public_api(DESCRIPTOR_SET)
    checked = 0
    for route in api.routes:
        if not route.template.startswith("/v3/{project_id}/volumes"):
            continue
        if "/action/" in route.template:
            # An action's own path is reached only by a body naming it (the gateway appends
            # the body's key to `.../action`): an empty body never gets there.
            continue
        for method in set(route.methods) & {"POST", "PUT"}:
            path = route.template.replace("{project_id}", project)
            path = re.sub(r"\{[^}]+\}", NO_SUCH_VOLUME, path)
            response = httpx.request(
                method,
                cluster.rest_url + path,
                headers={"X-Auth-Token": f"u1:{project}", "Content-Type": "application/json"},
            )
            assert response.status_code == 400, (method, path, response.text)
            assert set(response.json()) == {"badRequest"}
            assert_headers(response)
            checked += 1
    assert checked >= 1


def test_microversion_too_high_is_406_as_cinder(cluster: Cluster, project: str) -> None:
    expected = golden("err-microversion-too-high")
    response = httpx.get(
        f"{cluster.rest_url}/v3/{project}/volumes", headers=headers(project, version="3.999")
    )
    assert response.status_code == expected["status"] == 406
    assert response.json() == expected["body"]
    assert_headers(response, "3.999")


@pytest.mark.parametrize("version", ["3.x", "3.01", "3", "v3.1"])
def test_malformed_microversion_is_400_without_version_header(
    cluster: Cluster, project: str, version: str
) -> None:
    response = httpx.get(
        f"{cluster.rest_url}/v3/{project}/volumes", headers=headers(project, version=version)
    )
    message = (
        f"API Version String {version} is of invalid format. Must be of format MajorNum.MinorNum."
    )
    assert_fault(response, 400, "badRequest", message)
    assert_headers(response, None)


def test_gateway_errors_carry_no_version_header(cluster: Cluster, project: str) -> None:
    """Errors Envoy makes before any RPC runs: no microversion echo, as Cinder's unknown path."""
    path = f"{cluster.rest_url}/v3/{project}/no-such-thing"
    for version in ("3.42", "3.x"):
        response = httpx.get(path, headers=headers(project, version=version))
        assert response.status_code == 404
        assert_headers(response, None)


def test_request_id_kept_on_errors(cluster: Cluster, project: str) -> None:
    rid = "req-0b7c3a1e-0f6c-4d1b-9d2a-3b1c5e7f9a11"
    for method, path in (("GET", "/v3/nowhere"), ("PATCH", f"/v3/{project}/volumes")):
        response = httpx.request(
            method,
            cluster.rest_url + path,
            headers={**headers(project), "X-OpenStack-Request-Id": rid},
        )
        assert response.status_code == 404
        assert response.headers["x-openstack-request-id"] == rid
