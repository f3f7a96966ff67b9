"""A field's key in Cinder's JSON: its ``(cindermesh.api.v1.json_key)`` option, for a key no
proto name can spell (``os-vol-host-attr:host``, ``OS-SCH-HNT:scheduler_hints``), else its
proto name. The build writes it into Envoy's descriptor set (``build_protos``); the api's edge
reads it to tell a body's keys from those no field takes."""

from __future__ import annotations

from google.protobuf import descriptor, descriptor_pb2

__all__ = ["JSON_KEY_OPTION", "json_key", "json_key_option"]

JSON_KEY_OPTION = "cindermesh.api.v1.json_key"


def json_key_option(options: descriptor_pb2.FieldOptions) -> str:
    """The ``json_key`` option's value, or ``""`` without one."""
    for option, value in options.ListFields():
        if option.full_name == JSON_KEY_OPTION:
            return str(value)
    return ""


def json_key(field: descriptor.FieldDescriptor) -> str:
    options = field.GetOptions()
    assert isinstance(options, descriptor_pb2.FieldOptions)
    return json_key_option(options) or field.name
