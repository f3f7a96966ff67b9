"""The request id (``req-<uuid>``), Cinder's ``x-openstack-request-id``.

It lives in a context variable set by the gRPC server interceptor, is sent to the next hop as
metadata by the client interceptor, and is stamped on every span and log line.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

__all__ = [
    "REQUEST_ID_ATTRIBUTE",
    "REQUEST_ID_HEADER",
    "current_request_id",
    "new_request_id",
    "request_id_var",
    "valid_request_id",
]

REQUEST_ID_HEADER = "x-openstack-request-id"
#: The span attribute that carries it (Envoy's span gets it as a custom tag of the same name).
REQUEST_ID_ATTRIBUTE = "openstack.request_id"

_FORMAT = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def valid_request_id(value: str | None) -> bool:
    return value is not None and _FORMAT.match(value) is not None


def current_request_id() -> str:
    return request_id_var.get()
