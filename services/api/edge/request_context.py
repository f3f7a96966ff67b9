"""What the api knows about one REST/gRPC call: who, which microversion, which URL base."""

from __future__ import annotations

from dataclasses import dataclass

from services.api.edge.auth import Caller
from services.api.edge.microversion import Microversion
from services.api.policy import DEFAULT_ENFORCER, Enforcer

__all__ = ["RequestContext"]


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    version: Microversion
    #: ``http://host:port`` the client used (from the gateway), for Cinder's absolute links.
    base_url: str
    #: Whether the URL carried the project (``/v3/{project_id}/...``); links then carry it too.
    project_in_url: bool
    #: The REST path and query the client sent (empty for direct gRPC calls).
    original_path: str = ""
    #: The ``If-Match`` request header, if any.
    if_match: str | None = None
    #: The policy table the api loaded (Cinder's defaults with the configuration's overrides).
    policy: Enforcer = DEFAULT_ENFORCER

    @property
    def project_id(self) -> str:
        return self.caller.project_id
