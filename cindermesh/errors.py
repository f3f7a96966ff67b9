"""Domain errors shared by the services.

They carry Cinder's user-facing message only; the gRPC status, the HTTP status and Cinder's
fault key are attached at the api's edge (``services/api/edge/errors.py``), in one table.

    CindermeshError
    ├── InvalidInput          request data refused (400)
    │   ├── MalformedUrl      project in the URL is not the token's (400)
    │   ├── InvalidVolume     operation not allowed in the volume's state (400)
    │   └── InvalidSnapshot   operation not allowed in the snapshot's state (400)
    ├── NotAuthenticated      no usable token (401)
    ├── Forbidden             not allowed for this user (403)
    ├── NotFound              no such thing visible to the caller (404)
    ├── Conflict              clashes with what exists (409)
    ├── PreconditionFailed    If-Match does not match (412, no body)
    ├── QuotaExceeded         over a project quota (413)
    ├── VersionNotSupported   microversion out of range (406)
    ├── NoValidBackend        the scheduler found no backend (internal)
    ├── BackendUnavailable    a service could not be reached (503)
    └── BackendFailed         a backend answered with a failure (500)
"""

from __future__ import annotations

__all__ = [
    "BackendFailed",
    "BackendUnavailable",
    "CindermeshError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "InvalidSnapshot",
    "InvalidVolume",
    "MalformedUrl",
    "NoValidBackend",
    "NotAuthenticated",
    "NotFound",
    "PreconditionFailed",
    "QuotaExceeded",
    "VersionNotSupported",
]


class CindermeshError(Exception):
    """Base of domain errors; ``message`` is what the user sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CindermeshError):
    pass


class MalformedUrl(InvalidInput):
    def __init__(self) -> None:
        super().__init__("Malformed request url")


class InvalidVolume(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid volume: {reason}")


class InvalidSnapshot(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid snapshot: {reason}")


class NotAuthenticated(CindermeshError):
    pass


class Forbidden(CindermeshError):
    pass


class NotFound(CindermeshError):
    pass


class Conflict(CindermeshError):
    pass


class PreconditionFailed(CindermeshError):
    pass


class QuotaExceeded(CindermeshError):
    pass


class VersionNotSupported(CindermeshError):
    pass


class NoValidBackend(CindermeshError):
    pass


class BackendUnavailable(CindermeshError):
    pass


class BackendFailed(CindermeshError):
    """A volume manager (its driver) failed the call: Cinder's ``VolumeBackendAPIException``.
    ``message`` is the REST answer's (500, not in the edge's table); ``reason`` the
    manager's own message, for the callers that show it (Cinder's attachment update does)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
