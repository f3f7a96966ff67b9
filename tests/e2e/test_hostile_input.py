"""Hostile input against the real product (Envoy, the api, scheduler and volume manager): each
case answers a 4xx in Cinder's error shape and leaves nothing behind; then a bounded, seeded
fuzz run of every REST route, after which every volume is in an expected state and quota usage
matches the rows.

The product runs in a cluster of its own (types and quotas the run creates stay out of the
other tests' way)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.gateway_api import read_public_api
from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.helpers import db_rows, headers, wait_for_status

LIMIT = 114688
TOO_LARGE = {"overLimit": {"code": 413, "message": "Request is too large."}}
NOT_FOUND = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}
FIELD = "Invalid input for field/attribute"
NO_CONTROL = "'^[^\\\\x00-\\\\x1f\\\\x7f-\\\\x9f]*$'"
#: Words that only gRPC, Envoy or Python put in a message (the fuzz's own text never has them).
INTERNALS = re.compile(
    r"grpc|traceback|<class|exception|upstream|envoy|protobuf|transcod|statuscode|"
    r"resource_exhausted|invalid_argument|decodeerror|proto field|cindermesh\.|reset reason",
    re.IGNORECASE,
)
SETTLED = ("available", "error")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = make_cluster(tmp_path_factory.mktemp("hostile"), quotas={"volumes": 15})
    running.start()
    yield running
    running.stop()


def _rows(cluster: Cluster, project: str) -> dict[str, list[tuple[Any, ...]]]:
    """What a project has in the database: volumes, their metadata, quota usage."""
    return {
        "volumes": db_rows(cluster, "select id from volumes where project_id = ?", project),
        "metadata": db_rows(
            cluster,
            "select m.key from volume_metadata m join volumes v on v.id = m.volume_id "
            "where v.project_id = ?",
            project,
        ),
        "usage": db_rows(
            cluster,
            "select resource, in_use, reserved from quota_usages where project_id = ? "
            "order by resource",
            project,
        ),
    }


def _types(cluster: Cluster) -> list[tuple[Any, ...]]:
    return db_rows(cluster, "select name, description from volume_types order by name")


def assert_fault(response: httpx.Response, expected: dict[str, Any]) -> None:
    (key,) = expected
    assert response.status_code == expected[key]["code"], response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert response.headers["x-openstack-request-id"].startswith("req-")


def _bad_request(message: str) -> dict[str, Any]:
    return {"badRequest": {"code": 400, "message": message}}


# -- each case ----------------------------------------------------------------------------------


def test_invalid_utf8_in_path_query_and_headers(hostile: Cluster, project: str) -> None:
    before = _rows(hostile, project)
    base = f"{hostile.rest_url}/v3/{project}"
    hdrs = headers(project)
    with httpx.Client(timeout=30) as client:
        assert_fault(client.get(f"{base}/volumes/%ff%fe", headers=hdrs), NOT_FOUND)
        assert_fault(client.delete(f"{base}/volumes/%ff", headers=hdrs), NOT_FOUND)
        assert_fault(client.get(f"{base}/volumes/x/metadata/%c3", headers=hdrs), NOT_FOUND)
        assert_fault(client.get(f"{hostile.rest_url}/v3/%ff/volumes", headers=hdrs), NOT_FOUND)
        response = client.get(f"{base}/volumes/detail?name=%ff", headers=hdrs)
        assert_fault(response, _bad_request("Invalid input received: name is not valid UTF-8."))
        response = client.get(f"{base}/volumes/detail?name=ok&status=%c0%af", headers=hdrs)
        assert_fault(response, _bad_request("Invalid input received: status is not valid UTF-8."))
        response = client.post(f"{base}/volumes?x=%fe", headers=hdrs, json={"volume": {"size": 1}})
        assert_fault(response, _bad_request("Invalid filters x are found in query options."))
        response = client.get(
            f"{base}/volumes", headers={"X-Auth-Token": b"u1:" + project.encode() + b"\xff"}
        )
        assert_fault(
            response,
            {
                "unauthorized": {
                    "code": 401,
                    "message": "The request you have made requires authentication.",
                }
            },
        )
        response = client.post(
            f"{base}/volumes",
            headers={**hdrs, "OpenStack-API-Version": b"volume 3.\xff"},
            json={"volume": {"size": 1}},
        )
        # gRPC hands the api a header that is not UTF-8 as Latin-1: a malformed version.
        assert_fault(
            response,
            _bad_request(
                "API Version String 3.\xff is of invalid format. Must be of format "
                "MajorNum.MinorNum."
            ),
        )
        for body in (
            b'{"volume": {"size": 1, "name": "\xff"}}',
            b'{"volume": {"size": 1, "name": "\\ud800"}}',
        ):
            response = client.post(f"{base}/volumes", headers=hdrs, content=body)
            assert_fault(response, _bad_request("Malformed request body"))
        response = client.post(
            f"{base}/volumes/x/metadata", headers=hdrs, content=b'{"metadata": {"\xfe": "v"}}'
        )
        assert_fault(response, _bad_request("Malformed request body"))
    assert _rows(hostile, project) == before


def test_ten_mib_body_gets_413_never_a_reset(hostile: Cluster, project: str) -> None:
    before = _rows(hostile, project)
    url = f"{hostile.rest_url}/v3/{project}/volumes"
    body = json.dumps({"volume": {"size": 1, "description": "x" * (10 * 1024 * 1024)}}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1 << 16):
            yield body[start : start + (1 << 16)]

    with httpx.Client(timeout=60) as client:
        for content in (body, chunks()):
            assert_fault(client.post(url, headers=headers(project), content=content), TOO_LARGE)
        just_over = b'{"volume": {"size": 1, "name": "' + b"n" * LIMIT + b'"}}'
        assert_fault(client.post(url, headers=headers(project), content=just_over), TOO_LARGE)
    assert _rows(hostile, project) == before


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
@pytest.mark.parametrize("extra", [[], ["-H", "Expect:"], ["-H", "Transfer-Encoding: chunked"]])
def test_curl_with_ten_mib_gets_the_answer(
    hostile: Cluster, project: str, tmp_path: Path, extra: list[str]
) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b'{"volume": {"size": 1, "name": "' + b"x" * (10 * 1024 * 1024) + b'"}}')
    result = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{hostile.rest_url}/v3/{project}/volumes",
         "-H", f"X-Auth-Token: u1:{project}", "-H", "Content-Type: application/json",
         "--data-binary", f"@{big}", "-w", "\n%{http_code}", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # no "connection reset by peer"
    body, _, status = result.stdout.rpartition("\n")
    assert status == "413"
    assert json.loads(body) == TOO_LARGE
    assert db_rows(hostile, "select id from volumes where project_id = ?", project) == []


def test_oversize_fields_never_reach_grpc_limits(hostile: Cluster, project: str) -> None:
    before = _rows(hostile, project)
    base = f"{hostile.rest_url}/v3/{project}"
    hdrs = headers(project)
    with httpx.Client(timeout=30) as client:
        # A body just under the limit reaches the api and is refused there, message shortened.
        huge = {"volume": {"size": 1, "metadata": {"k": [0] * 50000}}}
        response = client.post(f"{base}/volumes", headers=hdrs, json=huge)
        assert response.status_code == 400, response.text
        message = response.json()["badRequest"]["message"]
        assert message.startswith(f"{FIELD} k. Value: [0, 0,") and len(message) <= 4096
        # Echoed 4-byte characters: the message (and its gRPC trailers) stay bounded, a 400.
        wide = json.dumps(
            {"volume": {"size": 1, "metadata": {"k": ["\U0001f642" * 20000]}}}, ensure_ascii=False
        )
        response = client.post(
            f"{base}/volumes",
            headers={**hdrs, "Content-Type": "application/json"},
            content=wide.encode(),
        )
        assert response.status_code == 400, response.text
        message = response.json()["badRequest"]["message"]
        assert " ... " in message and len(message) <= 4096
        response = client.post(
            f"{base}/volumes", headers=hdrs, json={"volume": {"size": 1, "name": "é" * 50000}}
        )
        assert_fault(
            response,
            _bad_request("Invalid input received: name has 50000 characters, more than 255."),
        )
        # Any head within Envoy's limit (32 KiB) reaches the api whole; past it, Envoy's 431
        # (a long URI too: Cinder's eventlet would say 414).
        response = client.get(f"{base}/volumes", headers={**hdrs, "Cookie": "c" * 20000})
        assert response.status_code == 200, response.text
        response = client.get(f"{base}/volumes/detail?name=" + "n" * 20000, headers=hdrs)
        assert response.status_code == 200, response.text
        too_large = {
            "computeFault": {"code": 431, "message": "Request header fields are too large."}
        }
        response = client.get(
            f"{base}/volumes", headers={"X-Auth-Token": f"u1:{project}" + "a" * 40000}
        )
        assert_fault(response, too_large)
        response = client.get(f"{base}/volumes/detail?name=" + "n" * 40000, headers=hdrs)
        assert_fault(response, too_large)
        response = client.get(f"{base}/volumes", headers={**hdrs, "X-Pad": "p" * 40000})
        assert_fault(response, too_large)
        # A message that echoes a large value stays within every header limit on the way back.
        response = client.put(
            f"{base}/os-quota-sets/{project}", headers=hdrs, json={"quota_set": "q" * 40000}
        )
        assert response.status_code == 400, response.text[:300]
        assert len(response.json()["badRequest"]["message"]) <= 4096
    assert _rows(hostile, project) == before


CONTROL_CASES = [
    ("volumes", "POST", {"volume": {"size": 1, "name": "a\x00b"}}, f"{FIELD} name. Value: a\x00b. 'a\\x00b' does not match {NO_CONTROL}"),
    ("volumes", "POST", {"volume": {"size": 1, "description": "d\x1b[2J"}}, None),
    ("volumes", "POST", {"volume": {"size": 1, "metadata": {"k": "v\x00"}}}, f"{FIELD} k. Value: v\x00. 'v\\x00' does not match {NO_CONTROL}"),
    ("volumes", "POST", {"volume": {"size": 1, "metadata": {"k\x00": "v"}}}, None),
    ("volumes", "POST", {"volume": {"size": 1, "metadata": {"k\n": "v"}}}, None),
    ("volumes/{volume}", "PUT", {"volume": {"name": "\x07"}}, f"{FIELD} name. Value: \x07. '\\x07' does not match {NO_CONTROL}"),
    ("volumes/{volume}", "PUT", {"volume": {"metadata": {"k": "\x9b"}}}, None),
    ("volumes/{volume}/metadata", "POST", {"metadata": {"k": "\x00"}}, None),
    ("volumes/{volume}/metadata", "PUT", {"metadata": {"\x00": "v"}}, None),
    ("volumes/{volume}/metadata/k", "PUT", {"meta": {"k": "v\x01"}}, None),
    ("types", "POST", {"volume_type": {"name": "t\x00"}}, f"{FIELD} name. Value: t\x00. 't\\x00' does not match {NO_CONTROL}"),
    ("types", "POST", {"volume_type": {"name": "t", "description": "d\x00"}}, None),
    ("types", "POST", {"volume_type": {"name": "t", "extra_specs": {"k": "v\x00"}}}, None),
    ("types", "POST", {"volume_type": {"name": "t", "extra_specs": {"k\x00": "v"}}}, None),
]  # fmt: skip


def test_control_characters_are_refused_and_never_stored(hostile: Cluster, project: str) -> None:
    base = f"{hostile.rest_url}/v3/{project}"
    admin = headers(project, user="admin")
    with httpx.Client(timeout=30) as client:
        created = client.post(
            f"{base}/volumes",
            headers=admin,
            json={"volume": {"size": 1, "name": "ok", "metadata": {"k": "v"}}},
        )
        volume = wait_for_status(
            client, f"{base}/volumes/{created.json()['volume']['id']}", admin, "available"
        )
        before, types = _rows(hostile, project), _types(hostile)
        for path, method, body, message in CONTROL_CASES:
            url = f"{base}/{path.format(volume=volume['id'])}"
            response = client.request(method, url, headers=admin, json=body)
            assert response.status_code == 400, (path, body, response.text)
            fault = response.json()["badRequest"]
            assert message is None or fault["message"] == message
            assert fault["code"] == 400 and "does not match" in fault["message"]
        shown = client.get(f"{base}/volumes/{volume['id']}", headers=admin).json()["volume"]
    assert (shown["name"], shown["metadata"]) == ("ok", {"k": "v"})
    assert _rows(hostile, project) == before
    assert _types(hostile) == types


# -- the fuzz run ---------------------------------------------------------------------------------

ROUTES = [(route.template, route.methods) for route in read_public_api(DESCRIPTOR_SET).routes]
#: What the fuzz picks from: each route once per method it takes, creates (which go all the
#: way to the volume manager) six times more.
WEIGHTED_ROUTES = [
    (template, methods)
    for template, methods in ROUTES
    for method in methods
    for _ in range(6 if template.endswith("/volumes") and method == "POST" else 1)
]
#: Text the fuzz sends: letters, digits, escapes' characters, controls, wide characters.
ALPHABET = 'aeéz09 -_:./%\x00\x01\x1f\x7f\x85\u2028\u3000☃🙂"\\'
ODD_SEGMENTS = [
    "%ff%fe", "%00", "%2F", "..", "%25", "a%20b", "%c3%a9", "%zz", "-1", "null", "%e0%80%af",
    "%ed%a0%80", "x" * 300, "default", "detail", "%F0%9F%99%82",
]  # fmt: skip
QUERY_KEYS = [
    "limit", "marker", "offset", "sort", "sort_key", "sort_dir", "name", "status", "metadata",
    "all_tenants", "with_count", "is_public", "usage", "cascade", "force", "project_id", "bogus",
    "availability_zone", "volume_type", "%ff", "na%00me",
]  # fmt: skip
VERSIONS: list[str | bytes] = [
    "volume 3.0",
    "volume 3.71",
    "volume latest",
    "volume 3.999",
    "volume 3.x",
    "compute 2.1",
    b"volume 3.\xff",
    "",
]


def _text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(alphabet=ALPHABET, max_size=max_size)


def _fine() -> st.SearchStrategy[str]:
    """Text as clients send it, mostly; now and then with control characters."""
    return _one_in(4, _text(), st.text(alphabet="aeéz09 -_:.☃🙂", max_size=30))


def _huge() -> st.SearchStrategy[str]:
    return st.sampled_from([256, 4096, 40_000, LIMIT - 100, LIMIT + 10]).map(
        lambda n: "é" * (n // 2)
    )


def _json() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
        _text(), _huge(), st.sampled_from(["1", "0", "true", "nova", "__DEFAULT__", "-1", "1.5"]),
    )  # fmt: skip
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(_text(12), inner, max_size=4)
        ),
        max_leaves=12,
    )


def _one_in(
    n: int, rare: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``rare`` once in ``n`` draws (an inner value: Hypothesis favours the ends of a range)."""
    return st.integers(0, n - 1).flatmap(lambda i: rare if i == n // 2 else usual)


#: Per field, values a client would send (most) and anything (some).
_GOOD: dict[str, st.SearchStrategy[Any]] = {
    "size": st.integers(1, 3) | st.sampled_from(["2", 0, -1, "x", 2**31]),
    "name": _fine(), "description": _fine(), "display_name": _fine(),
    "metadata": st.dictionaries(st.sampled_from(["k", "a:b", "x.y", "sp ace"]) | _text(6), _fine()),
    "extra_specs": st.dictionaries(st.sampled_from(["volume_backend_name", "k"]) | _text(6), _fine() | st.none()),
    "volume_type": _one_in(4, st.sampled_from(["missing", "%"]) | _fine(), st.sampled_from(["fuzz", "__DEFAULT__"])),
    "availability_zone": _one_in(4, st.sampled_from(["elsewhere", ""]) | _fine(), st.just("nova")),
    "os-volume-type-access:is_public": st.sampled_from([True, False, "true", "no", "maybe"]),
    "volumes": st.integers(-2, 30) | st.sampled_from(["5", "x"]),
    "gigabytes": st.integers(-2, 2000), "per_volume_gigabytes": st.integers(-2, 10),
    "k": _fine(), "a:b": _fine(),
    "snapshot_id": _one_in(4, st.uuids().map(str), st.none()),
    "source_volid": _one_in(4, st.uuids().map(str), st.none()),
    "backup_id": st.none(), "group_id": st.none(), "imageRef": st.none(),
    "multiattach": st.sampled_from([None, False, "false", True]),
}  # fmt: skip


def _object(fields: list[str], good_share: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """A valid-looking object: each of the route's fields or not, a good value ``good_share``
    times out of ``good_share + 1``, junk keys now and then."""

    def value(name: str) -> st.SearchStrategy[Any]:
        return _one_in(good_share + 1, _json(), _GOOD.get(name, _fine()))

    required = {name: value(name) for name in fields[:1] if name == "size"}
    optional = {name: value(name) for name in fields if name not in required}
    known = st.fixed_dictionaries(required, optional=optional)
    extra = _one_in(good_share + 1, st.dictionaries(_text(12), _json(), max_size=2), st.just({}))
    return st.tuples(known, extra).map(lambda kj: {**kj[1], **kj[0]})


BODY_FIELDS = {
    "volume": ["size", "name", "description", "metadata", "volume_type", "availability_zone", "display_name", "snapshot_id", "source_volid", "multiattach", "imageRef", "backup_id", "group_id"],
    "volume_type": ["name", "description", "extra_specs", "os-volume-type-access:is_public"],
    "quota_set": ["volumes", "gigabytes", "snapshots", "backups", "per_volume_gigabytes", "id", "volumes___DEFAULT__"],
    "metadata": ["k", "a:b", "x.y", "sp ace"],
    "meta": ["k"],
}  # fmt: skip
ROOTS = (("metadata/{key}", "meta"), ("metadata", "metadata"), ("types", "volume_type"), ("quota-sets/{target_project_id}", "quota_set"))  # fmt: skip


def _root(template: str) -> str:
    """The body's top-level key the route takes (Cinder's)."""
    return next((root for ending, root in ROOTS if template.endswith(ending)), "volume")


def _body(template: str) -> st.SearchStrategy[bytes | None]:
    root = _root(template)
    own = _object(BODY_FIELDS[root]).map(lambda v: {root: v})
    other = st.sampled_from(sorted(BODY_FIELDS)).flatmap(
        lambda r: st.one_of(_object(BODY_FIELDS[r]), _json()).map(lambda v: {r: v})
    )
    encoded = st.one_of(own, own, own, other, _json()).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode()
    )
    garbage = st.one_of(
        st.binary(max_size=60),
        st.sampled_from([b"", b"{", b'{"volume": {"size": 1,', b"\xff\xfe", b"[]", b"null", b'{"volume":{"name":"\xff"}}']),
        st.integers(LIMIT - 8, LIMIT + 8).map(lambda n: b'{"volume":{"size":1,"name":"' + b"x" * (n - 30) + b'"}}'),
    )  # fmt: skip
    return st.one_of(st.none(), encoded, encoded, encoded, garbage)


def _ids_for(ids: dict[str, list[str]], variable: str) -> list[str]:
    """Real ids for a path variable (the own project for a project); any other variable (a
    host, a message or spec id, ...) gets a name nothing has."""
    if "project" in variable:
        return ids[variable][:1]
    return ids.get(variable, ["x1"])


@st.composite
def _clean_request(draw: st.DrawFn, ids: dict[str, list[str]]) -> dict[str, Any]:
    """A request as a client sends it: a route and one of its methods, real ids, a valid
    token, JSON; the body a valid-looking object for the route (values still odd at times)."""
    template, methods = draw(st.sampled_from(WEIGHTED_ROUTES))
    method = draw(st.sampled_from(methods))
    path = re.sub(
        r"\{([^}=]+)[^}]*\}",
        lambda m: draw(st.sampled_from(_ids_for(ids, m.group(1)))),
        template,
    )
    user = draw(st.sampled_from(["u1", "admin"]))
    hdrs: dict[str, str | bytes] = {
        "X-Auth-Token": f"{user}:{ids['project_id'][0]}",
        "Content-Type": "application/json",
    }
    if draw(st.booleans()):
        hdrs["OpenStack-API-Version"] = draw(
            st.sampled_from(["volume 3.0", "volume 3.71", "volume 3.53"])
        )
    root = _root(template)
    body = None
    if method in ("POST", "PUT"):
        body = json.dumps({root: draw(_object(BODY_FIELDS[root], 12))}, ensure_ascii=False).encode()
    return {
        "method": method,
        "path": path,
        "headers": hdrs,
        "body": body,
        "chunked": draw(st.booleans()),
    }


@st.composite
def _hostile_request(draw: st.DrawFn, ids: dict[str, list[str]]) -> dict[str, Any]:
    """Anything: any method on a route, ids real or odd, a query, odd tokens, versions and
    content types, a body valid-looking or garbage."""
    template, methods = draw(st.sampled_from(WEIGHTED_ROUTES))
    method = draw(st.sampled_from([*methods] * 3 + ["GET", "POST", "PUT", "DELETE", "PATCH"]))

    def fill(match: re.Match[str]) -> str:
        known = ids.get(match.group(1), [])
        return draw(st.sampled_from(known * 3 + ODD_SEGMENTS) | _text(12).map(quote))

    path = re.sub(r"\{([^}=]+)[^}]*\}", fill, template)
    value = _text(20).map(quote) | st.sampled_from(ODD_SEGMENTS) | st.integers(-5, 2000).map(str)
    params = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), value), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in params)
    user = draw(st.sampled_from(["u1", "admin", "u2"]))
    project, other = ids["project_id"]
    tokens: list[str | bytes] = [f"{user}:{project}"] * 3 + [
        "",
        "x",
        "a:",
        b"u1:\xff",
        f"{user}:{other}",
    ]
    token = draw(st.sampled_from(tokens))
    hdrs: dict[str, str | bytes] = {"X-Auth-Token": token} if token else {}
    version = draw(st.sampled_from(["", *VERSIONS]))
    if version:
        hdrs["OpenStack-API-Version"] = version
    types = ["application/json"] * 3 + [
        "text/plain",
        "application/vnd.openstack.volume+json",
        "",
        "application/grpc",
    ]
    content_type = draw(st.sampled_from(types))
    if content_type:
        hdrs["Content-Type"] = content_type
    if draw(st.integers(0, 9)) == 0:
        hdrs["If-Match"] = draw(st.sampled_from(["*", "abc", b"\xff"]))
    return {
        "method": method,
        "path": path + (f"?{query}" if query else ""),
        "headers": hdrs,
        "body": draw(_body(template)),
        "chunked": draw(st.booleans()),
    }


def _requests(ids: dict[str, list[str]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(_clean_request(ids), _hostile_request(ids))


def _check_answer(request: dict[str, Any], response: httpx.Response) -> None:
    where = f"{request['method']} {request['path'][:200]} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    assert response.headers.get("x-openstack-request-id", "").startswith("req-"), where
    for name in ("grpc-status", "grpc-message", "x-cindermesh-fault", "x-cindermesh-http-status"):
        assert name not in response.headers, where
    assert "grpc" not in response.headers.get("content-type", ""), where
    if response.content:
        assert response.headers["content-type"] == "application/json", where
        response.json()
    if response.status_code < 400 or response.status_code == 412:
        return
    assert response.headers["content-type"] == "application/json", where
    body = response.json()
    assert isinstance(body, dict) and len(body) == 1, where
    ((key, fault),) = body.items()
    assert re.fullmatch(r"[a-z][A-Za-z]+", key), where
    assert fault["code"] == response.status_code and isinstance(fault["message"], str), where
    assert set(fault) <= {"code", "message", "retryAfter"} and fault["message"], where
    assert not INTERNALS.search(fault["message"]), where


def _settle(cluster: Cluster, timeout: float = 30.0) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(cluster, "select status from volumes")
        if all(status in SETTLED for (status,) in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _controls(text: str | None, allowed: str = "") -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text or "")


def _check_database(cluster: Cluster) -> None:
    rows = _settle(cluster)
    assert {status for (status,) in rows} <= set(SETTLED), Counter(rows)
    assert db_rows(cluster, "select count(*) from reservations") == [(0,)]
    held = db_rows(
        cluster,
        "select v.project_id, t.name, count(*), sum(v.size) from volumes v "
        "join volume_types t on t.id = v.volume_type_id where v.quota_held group by 1, 2",
    )
    expected: Counter[tuple[str, str]] = Counter()
    for project, type_name, count, size in held:
        expected[(project, "volumes")] += count
        expected[(project, "gigabytes")] += size
        expected[(project, f"volumes_{type_name}")] += count
        expected[(project, f"gigabytes_{type_name}")] += size
    usage = db_rows(cluster, "select project_id, resource, in_use, reserved from quota_usages")
    for project, resource, in_use, reserved in usage:
        assert reserved == 0, (project, resource)
        if resource.startswith(("volumes", "gigabytes")):
            assert in_use == expected.pop((project, resource), 0), (project, resource)
    assert not +expected, expected
    for name, description in db_rows(cluster, "select name, description from volumes"):
        assert not _controls(name) and not _controls(description, "\t\n\r"), (name, description)
    for table in ("volume_metadata", "volume_type_extra_specs"):
        for key, value in db_rows(cluster, f"select key, value from {table}"):
            assert re.fullmatch(r"[a-zA-Z0-9-_:. /]{1,255}", key) and not _controls(value), (
                key,
                value,
            )
    for name, description in db_rows(cluster, "select name, description from volume_types"):
        assert not _controls(name) and not _controls(description), (name, description)


def test_fuzz_every_route(hostile: Cluster) -> None:
    project, other = "f0220000000000000000000000000001", "f0220000000000000000000000000002"
    admin = headers(project, user="admin")
    base = f"{hostile.rest_url}/v3/{project}"
    seen: Counter[int] = Counter()
    with httpx.Client(timeout=60) as client:
        created = client.post(
            f"{base}/volumes", headers=admin, json={"volume": {"size": 1, "metadata": {"k": "v"}}}
        )
        volume_id = created.json()["volume"]["id"]
        wait_for_status(client, f"{base}/volumes/{volume_id}", admin, "available")
        type_id = client.post(
            f"{base}/types", headers=admin, json={"volume_type": {"name": "fuzz"}}
        ).json()["volume_type"]["id"]
        ids = {
            "project_id": [project, other], "url_project_id": [project, other],
            "target_project_id": [project, other], "volume_id": [volume_id], "type_id": [type_id, "default"],
            "key": ["k", "missing"],
        }  # fmt: skip

        @settings(
            derandomize=True, max_examples=2000, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), print_blob=False,
        )  # fmt: skip
        @given(_requests(ids))
        def one(request: dict[str, Any]) -> None:
            body = request["body"]
            content = iter([body]) if body is not None and request["chunked"] else body
            response = client.request(
                request["method"], hostile.rest_url + request["path"],
                headers=request["headers"], content=content,
            )  # fmt: skip
            seen[response.status_code] += 1
            _check_answer(request, response)

        started = time.monotonic()
        one()
    print(
        f"fuzz: {sum(seen.values())} requests in {time.monotonic() - started:.1f} s: {dict(sorted(seen.items()))}"
    )
    assert len(seen) > 5 and seen[200] and seen[400] and seen[404]
    _check_database(hostile)
