"""The product with ``auth_strategy = "keystone"`` against a real Keystone (deploy/keystone/up),
over REST through Envoy: Keystone tokens, 401 with WWW-Authenticate, projects apart, admins
across projects, 503 when Keystone is unreachable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from cindermesh_pb.api.v1 import volume_service_pb2, volume_service_pb2_grpc
from deploy.keystone.keystone_up import Keystone, KeystoneError
from tests.e2e.cluster import Cluster, free_port
from tests.e2e.helpers import wait_for_404, wait_for_status
from tests.e2e.keystone import make_keystone_cluster

UNAUTHORIZED = {
    "unauthorized": {"code": 401, "message": "The request you have made requires authentication."}
}


@dataclass(frozen=True)
class User:
    project_id: str
    token: str

    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token, "Content-Type": "application/json"}


@dataclass(frozen=True)
class Users:
    a: User
    b: User
    admin: User


@pytest.fixture(scope="session")
def users(keystone: Keystone) -> Users:
    admin = keystone.admin()
    made = []
    for name in ("ks-a", "ks-b"):
        project_id = admin.ensure_project(name)
        admin.ensure_user(f"{name}-user", "pw-" + name, project_id, roles=("member",))
        made.append(User(project_id, keystone.issue_token(f"{name}-user", "pw-" + name, name)))
    admin_project = admin.ensure_project("admin")
    admin_token = keystone.issue_token("admin", keystone.admin_password, "admin")
    return Users(made[0], made[1], User(admin_project, admin_token))


def test_keystone_user_creates_and_lists(ks_cluster: Cluster, users: Users) -> None:
    a = users.a
    base = f"{ks_cluster.rest_url}/v3/{a.project_id}/volumes"
    with httpx.Client() as client:
        created = client.post(base, headers=a.headers(), json={"volume": {"size": 1, "name": "k"}})
        assert created.status_code == 202, created.text
        volume = created.json()["volume"]
        shown = wait_for_status(client, f"{base}/{volume['id']}", a.headers(), "available")
        assert shown["os-vol-tenant-attr:tenant_id"] == a.project_id
        assert shown["user_id"] != ""
        listed = client.get(base, headers=a.headers())
        assert listed.status_code == 200
        assert volume["id"] in [v["id"] for v in listed.json()["volumes"]]

        # Project B's token does not see it, neither in its own project nor in A's URL.
        b = users.b
        other = client.get(f"{ks_cluster.rest_url}/v3/{b.project_id}/volumes/{volume['id']}",
                           headers=b.headers())  # fmt: skip
        assert other.status_code == 404, other.text
        assert (
            other.json()["itemNotFound"]["message"] == f"Volume {volume['id']} could not be found."
        )
        assert client.get(f"{ks_cluster.rest_url}/v3/{b.project_id}/volumes",
                          headers=b.headers()).json()["volumes"] == []  # fmt: skip
        assert client.get(f"{base}/{volume['id']}", headers=b.headers()).status_code == 400

        # The admin role sees every project's volumes with all_tenants=1.
        admin = users.admin
        admin_base = f"{ks_cluster.rest_url}/v3/{admin.project_id}/volumes"
        everyone = client.get(f"{admin_base}/detail?all_tenants=1", headers=admin.headers())
        assert everyone.status_code == 200, everyone.text
        mine = [v for v in everyone.json()["volumes"] if v["id"] == volume["id"]]
        assert mine and mine[0]["os-vol-tenant-attr:tenant_id"] == a.project_id
        own = client.get(f"{admin_base}/detail", headers=admin.headers()).json()["volumes"]
        assert volume["id"] not in [v["id"] for v in own]

        assert client.delete(f"{base}/{volume['id']}", headers=a.headers()).status_code == 202
        assert wait_for_404(client, f"{base}/{volume['id']}", a.headers()).status_code == 404


@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-token", "gAAAAABnotafernettoken", "user:project"],
    ids=["missing", "empty", "garbage", "fernet-like", "noauth-style"],
)
def test_invalid_token_is_401_with_challenge(
    ks_cluster: Cluster, keystone: Keystone, users: Users, token: str | None
) -> None:
    hdrs = {} if token is None else {"X-Auth-Token": token}
    response = httpx.get(f"{ks_cluster.rest_url}/v3/{users.a.project_id}/volumes", headers=hdrs)
    assert response.status_code == 401, response.text
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == f'Keystone uri="{keystone.url}"'
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_unscoped_token_is_401(ks_cluster: Cluster, keystone: Keystone, users: Users) -> None:
    # The admin has no default project: a token asked without a scope has none.
    unscoped = keystone.issue_token("admin", keystone.admin_password)
    response = httpx.get(
        f"{ks_cluster.rest_url}/v3/{users.a.project_id}/volumes",
        headers={"X-Auth-Token": unscoped},
    )
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_grpc_callers_use_the_same_token(ks_cluster: Cluster, users: Users) -> None:
    with grpc.insecure_channel(ks_cluster.api_address) as channel:
        stub = volume_service_pb2_grpc.VolumeServiceStub(channel)
        request = volume_service_pb2.ListVolumesRequest(project_id=users.b.project_id)
        answer = stub.ListVolumes(request, metadata=[("x-auth-token", users.b.token)])
        assert list(answer.volumes) == []
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListVolumes(request, metadata=[("x-auth-token", "forged")])
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_catalog_has_the_volume_service(ks_cluster: Cluster, keystone: Keystone) -> None:
    admin = keystone.admin()
    _, services = admin.call("GET", "/services?type=volumev3")
    [service] = services["services"]
    assert service["name"] == "cinderv3"
    _, endpoints = admin.call("GET", f"/endpoints?service_id={service['id']}")
    assert sorted(e["interface"] for e in endpoints["endpoints"]) == ["admin", "internal", "public"]
    assert {e["url"] for e in endpoints["endpoints"]} == {
        f"{ks_cluster.rest_url}/v3/%(project_id)s"
    }
    with pytest.raises(KeystoneError):
        keystone.issue_token("admin", "wrong password", "admin")


def test_keystone_unreachable_is_503(tmp_path: Path, keystone: Keystone, users: Users) -> None:
    cluster = make_keystone_cluster(tmp_path, keystone)
    dead = f"http://127.0.0.1:{free_port()}"
    text = cluster.config_path.read_text().replace(keystone.url, dead)
    cluster.config_path.write_text(text)
    cluster.start()
    try:
        response = httpx.get(
            f"{cluster.rest_url}/v3/{users.a.project_id}/volumes", headers=users.a.headers()
        )
        assert response.status_code == 503, response.text
        assert response.json() == {
            "serviceUnavailable": {
                "code": 503,
                "message": "The Keystone service is temporarily unavailable.",
            }
        }
    finally:
        cluster.stop()
