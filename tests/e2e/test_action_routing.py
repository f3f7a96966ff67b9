"""Cinder's actions through the gateway: `POST .../{id}/action` reaches the RPC of the body's
only key (deploy/envoy/cinder_rest.lua), and a name no RPC serves gets Cinder's 400."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers

SOME_ID = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"volumes/{SOME_ID}/action", '{"os-no_such_thing": {"a": 1}}'),
        (f"snapshots/{SOME_ID}/action", ' { "os-no_such_thing" : null }'),
        ("groups/action", '{"os-no_such_thing": {}}'),
    ],
)
def test_an_unknown_action_is_cinders_400(
    cluster: Cluster, project: str, path: str, body: str
) -> None:
    response = httpx.post(
        f"{cluster.rest_url}/v3/{project}/{path}",
        headers={**headers(project), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "badRequest": {
            "code": 400,
            "message": "There is no such action: os-no_such_thing. Verify the request body and "
            "Content-Type header and try again.",
        }
    }


def test_an_action_name_is_only_the_body_s_first_key(cluster: Cluster, project: str) -> None:
    """A body that names no action (not an object, no key, a key with a `/`) reaches no
    action RPC: the bare `action` URL is no resource (Cinder's 400 "Malformed request body")."""
    for body in ('["os-extend"]', '{"a/b": {}}', "{}"):
        response = httpx.post(
            f"{cluster.rest_url}/v3/{project}/volumes/{SOME_ID}/action",
            headers={**headers(project), "Content-Type": "application/json"},
            content=body,
        )
        assert response.status_code == 404, (body, response.text)
        assert response.json()["itemNotFound"]["message"] == "The resource could not be found."
