"""Keystone tokens, as Cinder's ``auth_strategy = keystone`` with keystonemiddleware's semantics.

A caller's token (``X-Auth-Token``; gRPC metadata ``x-auth-token``) is validated with
``GET /v3/auth/tokens`` (``X-Subject-Token``: the caller's, ``X-Auth-Token``: the service user's
own token, obtained by password and obtained again before it expires or when Keystone answers
401). The caller (user, project, lowercased role names, domains) comes from the token body only.

- Cache: an answer is remembered per token (by its SHA-256) until
  ``min(now + token_cache_time, token expiry)``, never past the expiry; a refused token is
  remembered ``token_cache_time`` too (keystonemiddleware's negative cache). As with
  keystonemiddleware, a token revoked in Keystone stays valid here until its entry ends.
- Concurrent validations of one token share one request to Keystone.
- A token Keystone does not know (404), an expired one, or one scoped to no project
  (unscoped, domain- or system-scoped: this api serves projects only) is refused: 401 with
  ``WWW-Authenticate: Keystone uri="<www_authenticate_uri>"``.
- Keystone unreachable, slow (``http_connect_timeout``), failing (5xx) or refusing the service
  user: 503 ``serviceUnavailable``, never 401 or 500; nothing is cached then.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cindermesh.errors import BackendUnavailable, NotAuthenticated
from cindermesh.settings import KeystoneAuthtokenSettings
from cindermesh.telemetry.tracing import tracer
from services.api.edge.auth import Caller

__all__ = ["UNAUTHORIZED_MESSAGE", "UNAVAILABLE_MESSAGE", "KeystoneAuth"]

log = logging.getLogger(__name__)

UNAUTHORIZED_MESSAGE = "The request you have made requires authentication."
#: keystonemiddleware's message when it cannot validate a token.
UNAVAILABLE_MESSAGE = "The Keystone service is temporarily unavailable."
#: The service token is obtained again this many seconds before it expires.
SERVICE_TOKEN_SLACK = 120.0
#: Most tokens remembered (the least recently validated go first).
MAX_CACHED_TOKENS = 10_000
#: Longest token accepted (a Fernet token is about 200 characters).
MAX_TOKEN_CHARS = 8192


@dataclass(frozen=True)
class _Answer:
    """What is known of one token until ``until`` (wall-clock seconds); ``caller`` None: refused."""

    caller: Caller | None
    until: float


class KeystoneAuth:
    """The api's ``Authenticator`` for ``auth_strategy = "keystone"``."""

    def __init__(
        self,
        settings: KeystoneAuthtokenSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        max_cached: int = MAX_CACHED_TOKENS,
    ) -> None:
        settings.check_complete()
        self._settings = settings
        base = settings.auth_url.rstrip("/")
        self._tokens_url = f"{base if base.endswith('/v3') else base + '/v3'}/auth/tokens"
        uri = settings.www_authenticate_uri or settings.auth_url
        self.challenge: Sequence[tuple[str, str]] = (("www-authenticate", f'Keystone uri="{uri}"'),)
        self._client = httpx.AsyncClient(
            timeout=settings.http_connect_timeout, transport=transport, follow_redirects=False
        )
        self._clock = clock
        self._max_cached = max_cached
        self._cache: OrderedDict[str, _Answer] = OrderedDict()
        self._pending: dict[str, asyncio.Task[_Answer]] = {}
        self._service: tuple[str, float] | None = None
        self._service_lock = asyncio.Lock()

    async def caller(self, token: str | None) -> Caller:
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise NotAuthenticated(UNAUTHORIZED_MESSAGE)
        if not token.isprintable() or " " in token:
            raise NotAuthenticated(UNAUTHORIZED_MESSAGE)
        key = hashlib.sha256(token.encode()).hexdigest()
        answer = self._cache.get(key)
        if answer is None or answer.until <= self._clock():
            answer = await asyncio.shield(self._validation(key, token))
        if answer.caller is None:
            raise NotAuthenticated(UNAUTHORIZED_MESSAGE)
        return answer.caller

    async def close(self) -> None:
        await self._client.aclose()

    def _validation(self, key: str, token: str) -> asyncio.Task[_Answer]:
        """The one validation of ``token`` in flight, started if none is."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._validate(key, token))
            self._pending[key] = task

            def done(finished: asyncio.Task[_Answer]) -> None:
                if self._pending.get(key) is finished:
                    del self._pending[key]
                if not finished.cancelled():
                    finished.exception()  # retrieved: every waiter may have gone

            task.add_done_callback(done)
        return task

    async def _validate(self, key: str, token: str) -> _Answer:
        with tracer().start_as_current_span("api.auth.keystone.validate") as span:
            body = await self._token_data(token)
            now = self._clock()
            ttl = self._settings.token_cache_time
            answer = _Answer(None, now + ttl)
            if body is not None:
                caller, expires = _caller_of(body)
                if caller is not None and expires > now:
                    answer = _Answer(caller, min(now + ttl, expires))
            span.set_attribute("keystone.token.valid", answer.caller is not None)
        if ttl > 0:
            self._cache[key] = answer
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return answer

    async def _token_data(self, token: str) -> dict[str, Any] | None:
        """Keystone's body for ``token``, None if Keystone refuses it."""
        stale: str | None = None
        for _attempt in range(2):
            service = await self._service_token(stale)
            try:
                response = await self._client.get(
                    self._tokens_url,
                    headers={"X-Auth-Token": service, "X-Subject-Token": token},
                    params={"nocatalog": "1"},  # the api has no use for the catalog
                )
            except httpx.HTTPError as error:
                log.warning("cannot validate a token with Keystone: %r", error)
                raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error
            if response.status_code == 200:
                return _json(response)
            if response.status_code in (400, 404):
                # Not a token Keystone knows (or no longer: expired, revoked).
                return None
            if response.status_code == 401:
                # The service token: expired or revoked early. Once more with a new one.
                stale = service
                continue
            log.warning("Keystone answered %s validating a token", response.status_code)
            raise BackendUnavailable(UNAVAILABLE_MESSAGE)
        log.error("Keystone refuses the service user's new token")
        raise BackendUnavailable(UNAVAILABLE_MESSAGE)

    async def _service_token(self, stale: str | None) -> str:
        """The service user's token; a new one if it is ``stale`` or about to expire."""
        async with self._service_lock:
            current = self._service
            if (
                current is not None
                and current[0] != stale
                and current[1] - SERVICE_TOKEN_SLACK > self._clock()
            ):
                return current[0]
            self._service = None
            s = self._settings
            auth = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": s.username,
                                "domain": {"name": s.user_domain_name},
                                "password": s.password,
                            }
                        },
                    },
                    "scope": {
                        "project": {
                            "name": s.project_name,
                            "domain": {"name": s.project_domain_name},
                        }
                    },
                }
            }
            try:
                response = await self._client.post(
                    self._tokens_url, json=auth, params={"nocatalog": "1"}
                )
            except httpx.HTTPError as error:
                log.warning("cannot reach Keystone for the service token: %r", error)
                raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error
            token = str(response.headers.get("x-subject-token", ""))
            if response.status_code != 201 or not token:
                log.error(
                    "Keystone answered %s to the service user %r (keystone_authtoken settings)",
                    response.status_code,
                    s.username,
                )
                raise BackendUnavailable(UNAVAILABLE_MESSAGE)
            try:
                expires = _timestamp(_json(response)["token"]["expires_at"])
            except (KeyError, TypeError, ValueError) as error:
                raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error
            self._service = (token, expires)
            return token


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        log.warning("Keystone's answer is not JSON")
        raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error
    if not isinstance(body, dict):
        raise BackendUnavailable(UNAVAILABLE_MESSAGE)
    return body


def _timestamp(text: str) -> float:
    """Keystone's ``expires_at`` (``2025-01-01T00:00:00.000000Z``) in epoch seconds."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _caller_of(body: dict[str, Any]) -> tuple[Caller | None, float]:
    """The caller a token body names (None unless it is project-scoped), and its expiry."""
    try:
        token = body["token"]
        expires = _timestamp(token["expires_at"])
        project = token.get("project")
        if not project:
            return None, expires
        user = token["user"]
        caller = Caller(
            user_id=str(user["id"]),
            project_id=str(project["id"]),
            roles=frozenset(str(role["name"]).lower() for role in token.get("roles") or ()),
            user_domain_id=str(user["domain"]["id"]),
            project_domain_id=str(project["domain"]["id"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        log.warning("Keystone's token body is not one of a token: %r", error)
        raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error
    return caller, expires
