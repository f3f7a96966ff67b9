"""Values every resource's view writes: JSON null, a string or null, Cinder's time format."""

from __future__ import annotations

import datetime as dt

from google.protobuf import struct_pb2

__all__ = ["NULL", "format_time", "text_or_null"]

NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)


def text_or_null(value: str | None) -> struct_pb2.Value:
    return NULL if value is None else struct_pb2.Value(string_value=value)


def format_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
