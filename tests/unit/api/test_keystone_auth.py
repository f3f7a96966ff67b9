"""The Keystone authenticator against a small fake Keystone (httpx's mock transport)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cindermesh.errors import BackendUnavailable, NotAuthenticated
from cindermesh.settings import KeystoneAuthtokenSettings, Settings, load_settings
from services.api.edge.auth import Caller
from services.api.edge.keystone import UNAVAILABLE_MESSAGE, KeystoneAuth
from services.api.edge.rpc import Edge

AUTH_URL = "http://keystone.test:5000/v3"
SETTINGS = KeystoneAuthtokenSettings(
    www_authenticate_uri="http://keystone.test:5000",
    auth_url=AUTH_URL,
    username="cinder",
    password="pw",
    project_name="service",
)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeKeystone:
    """Keystone's two token calls: password auth (POST) and validation (GET)."""

    clock: Clock
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    service_tokens: set[str] = field(default_factory=set)
    service_lifetime: float = 3600.0
    logins: int = 0
    validations: int = 0
    down: bool = False
    status: int | None = None
    gate: asyncio.Event | None = None

    def add(
        self,
        token: str,
        *,
        lifetime: float = 3600.0,
        project: str | None = "p1",
        roles: tuple[str, ...] = ("member", "reader"),
    ) -> None:
        body: dict[str, Any] = {
            "methods": ["password"],
            "user": {"id": f"u-{token}", "name": token, "domain": {"id": "d-user"}},
            "expires_at": iso(self.clock.now + lifetime),
            "roles": [{"id": f"r-{r}", "name": r} for r in roles],
        }
        if project is not None:
            body["project"] = {"id": project, "name": project, "domain": {"id": "d-project"}}
        self.tokens[token] = {"token": body}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.gate is not None:
            await self.gate.wait()
        if self.status is not None:
            return httpx.Response(self.status, json={"error": {"code": self.status}})
        assert request.url.path == "/v3/auth/tokens"
        if request.method == "POST":
            self.logins += 1
            user = json.loads(request.content)["auth"]["identity"]["password"]["user"]
            if (user["name"], user["password"]) != ("cinder", "pw"):
                return httpx.Response(401, json={"error": {"code": 401}})
            token = f"svc-{self.logins}"
            self.service_tokens.add(token)
            expires = iso(self.clock.now + self.service_lifetime)
            return httpx.Response(
                201,
                headers={"X-Subject-Token": token},
                json={"token": {"expires_at": expires}},
            )
        self.validations += 1
        if request.headers.get("x-auth-token") not in self.service_tokens:
            return httpx.Response(401, json={"error": {"code": 401}})
        body = self.tokens.get(request.headers["x-subject-token"])
        if body is None:
            return httpx.Response(404, json={"error": {"code": 404}})
        return httpx.Response(200, json=body)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def keystone(clock: Clock) -> FakeKeystone:
    return FakeKeystone(clock)


def make_auth(
    keystone: FakeKeystone, clock: Clock, settings: KeystoneAuthtokenSettings = SETTINGS
) -> KeystoneAuth:
    return KeystoneAuth(settings, transport=httpx.MockTransport(keystone), clock=clock)


async def test_caller_from_the_token_body(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("t1", project="proj-a", roles=("Admin", "member", "reader"))
    caller = await make_auth(keystone, clock).caller("t1")
    assert caller == Caller(
        user_id="u-t1",
        project_id="proj-a",
        roles=frozenset({"admin", "member", "reader"}),
        user_domain_id="d-user",
        project_domain_id="d-project",
    )
    assert caller.is_admin


async def test_cache_hit_asks_keystone_once(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("t1")
    auth = make_auth(keystone, clock)
    first = await auth.caller("t1")
    clock.now += 299
    assert await auth.caller("t1") == first
    assert (keystone.logins, keystone.validations) == (1, 1)
    clock.now += 2  # past token_cache_time (300 s): asked again
    assert await auth.caller("t1") == first
    assert (keystone.logins, keystone.validations) == (1, 2)


async def test_cache_never_past_the_token_expiry(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("short", lifetime=10)
    auth = make_auth(keystone, clock)
    assert (await auth.caller("short")).project_id == "p1"
    clock.now += 9
    await auth.caller("short")
    assert keystone.validations == 1
    clock.now += 2  # expired: Keystone (which forgets it) is asked again and refuses it
    del keystone.tokens["short"]
    with pytest.raises(NotAuthenticated):
        await auth.caller("short")
    assert keystone.validations == 2


async def test_an_expired_body_is_refused(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("old", lifetime=-1)
    with pytest.raises(NotAuthenticated):
        await make_auth(keystone, clock).caller("old")


async def test_invalid_token_is_401_and_remembered(keystone: FakeKeystone, clock: Clock) -> None:
    auth = make_auth(keystone, clock)
    for _ in range(3):
        with pytest.raises(NotAuthenticated) as refused:
            await auth.caller("forged")
        assert refused.value.message == "The request you have made requires authentication."
    assert keystone.validations == 1
    for bad in (None, "", "with space", "caf\u00e9", "x" * 9000):
        with pytest.raises(NotAuthenticated):
            await auth.caller(bad)
    assert keystone.validations == 1


async def test_a_token_of_no_project_is_401(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("unscoped", project=None)
    with pytest.raises(NotAuthenticated):
        await make_auth(keystone, clock).caller("unscoped")


async def test_keystone_down_is_503_and_not_cached(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("t1")
    auth = make_auth(keystone, clock)
    keystone.down = True
    with pytest.raises(BackendUnavailable) as unavailable:
        await auth.caller("t1")
    assert unavailable.value.message == UNAVAILABLE_MESSAGE
    keystone.down = False
    keystone.status = 500
    with pytest.raises(BackendUnavailable):
        await auth.caller("t1")
    keystone.status = None
    assert (await auth.caller("t1")).user_id == "u-t1"


async def test_a_wrong_service_password_is_503(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("t1")
    settings = KeystoneAuthtokenSettings(
        auth_url=AUTH_URL, username="cinder", password="wrong", project_name="service"
    )
    with pytest.raises(BackendUnavailable):
        await make_auth(keystone, clock, settings).caller("t1")


async def test_service_token_obtained_again_on_401(keystone: FakeKeystone, clock: Clock) -> None:
    keystone.add("t1")
    keystone.add("t2")
    auth = make_auth(keystone, clock)
    await auth.caller("t1")
    keystone.service_tokens.clear()  # revoked early: Keystone answers 401
    assert (await auth.caller("t2")).user_id == "u-t2"
    assert keystone.logins == 2
    assert keystone.validations == 3


async def test_service_token_obtained_again_before_expiry(
    keystone: FakeKeystone, clock: Clock
) -> None:
    keystone.service_lifetime = 600
    keystone.add("t1", lifetime=7200)
    keystone.add("t2", lifetime=7200)
    auth = make_auth(keystone, clock)
    await auth.caller("t1")
    clock.now += 590  # within two minutes of its expiry
    await auth.caller("t2")
    assert keystone.logins == 2
    assert keystone.validations == 2


async def test_concurrent_validations_share_one_request(
    keystone: FakeKeystone, clock: Clock
) -> None:
    keystone.add("t1")
    keystone.gate = asyncio.Event()
    auth = make_auth(keystone, clock)
    waiting = [asyncio.create_task(auth.caller("t1")) for _ in range(20)]
    forged = [asyncio.create_task(auth.caller("forged")) for _ in range(5)]
    await asyncio.sleep(0.01)
    keystone.gate.set()
    callers = await asyncio.gather(*waiting)
    assert {c.user_id for c in callers} == {"u-t1"}
    for task in forged:
        with pytest.raises(NotAuthenticated):
            await task
    assert keystone.logins == 1
    assert keystone.validations == 2


async def test_a_waiter_that_goes_away_does_not_cancel_the_others(
    keystone: FakeKeystone, clock: Clock
) -> None:
    keystone.add("t1")
    keystone.gate = asyncio.Event()
    auth = make_auth(keystone, clock)
    first = asyncio.create_task(auth.caller("t1"))
    second = asyncio.create_task(auth.caller("t1"))
    await asyncio.sleep(0.01)
    first.cancel()
    keystone.gate.set()
    assert (await second).user_id == "u-t1"
    assert keystone.validations == 1


async def test_the_edge_sends_the_challenge_on_401(keystone: FakeKeystone, clock: Clock) -> None:
    edge = Edge(Settings(), make_auth(keystone, clock))
    with pytest.raises(NotAuthenticated) as refused:
        await edge.caller({"x-auth-token": "forged"}, anonymous=False)
    assert edge.error_headers(refused.value) == (
        ("www-authenticate", 'Keystone uri="http://keystone.test:5000"'),
    )
    assert edge.error_headers(BackendUnavailable("x")) == ()
    assert Edge(Settings()).error_headers(refused.value) == ()


def test_keystone_settings_are_checked_at_load() -> None:
    with pytest.raises(
        ValueError, match=re.escape("keystone_authtoken.auth_url, username, password")
    ):
        load_settings({"CINDERMESH_API__AUTH_STRATEGY": "keystone"})
    with pytest.raises(ValueError, match="auth_strategy"):
        load_settings({"CINDERMESH_API__AUTH_STRATEGY": "keystone2"})
    settings = load_settings(
        {
            "CINDERMESH_API__AUTH_STRATEGY": "keystone",
            "CINDERMESH_KEYSTONE_AUTHTOKEN__AUTH_URL": AUTH_URL,
            "CINDERMESH_KEYSTONE_AUTHTOKEN__USERNAME": "cinder",
            "CINDERMESH_KEYSTONE_AUTHTOKEN__PASSWORD": "pw",
            "CINDERMESH_KEYSTONE_AUTHTOKEN__TOKEN_CACHE_TIME": "60",
        }
    )
    assert settings.keystone_authtoken.token_cache_time == 60
    assert settings.keystone_authtoken.project_name == "service"
    assert load_settings({}).api.auth_strategy == "noauth"
