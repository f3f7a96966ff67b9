"""Values every resource's view writes: JSON null, a string or null, Cinder's time format."""

from __future__ import annotations

import datetime as dt

from google.protobuf import struct_pb2

from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2

__all__ = ["NULL", "format_time", "resource_links", "text_or_null"]

NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)


def text_or_null(value: str | None) -> struct_pb2.Value:
    return NULL if value is None else struct_pb2.Value(string_value=value)


def format_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def resource_links(
    base_url: str, project_id: str | None, collection: str, resource_id: str
) -> list[api_pb2.Link]:
    """Cinder's self and bookmark links; ``project_id``: the URL's project, if it had one."""
    path = f"{collection}/{resource_id}"
    if project_id is not None:
        path = f"{project_id}/{path}"
    return [
        api_pb2.Link(href=f"{base_url}/v3/{path}", rel="self"),
        api_pb2.Link(href=f"{base_url}/{path}", rel="bookmark"),
    ]
