"""Cinder's attachment views (``cinder/api/v3/views/attachments.py``): the summary (id,
status, instance, volume_id) and the detail (times, mode, connection information)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from google.protobuf import struct_pb2

from cindermesh.db import attachments
from cindermesh.db.models import VolumeAttachment
from cindermesh_pb.api.v1 import attachment_service_pb2 as pb
from services.api.schema import JsonValue
from services.api.view_values import NULL, format_time, text_or_null

__all__ = ["attachment_view"]


def _time_or_empty(value: dt.datetime | None) -> str:
    """Cinder's ``_normalize``: the time, or ``""``."""
    return format_time(value) if value is not None else ""


def attachment_view(
    attachment: VolumeAttachment,
    detail: bool,
    connection_format: str | None = None,
    connection_info: Mapping[str, JsonValue] | None = None,
) -> pb.VolumeAttachment:
    """``connection_format``: the volume's ``format`` admin metadata, which Cinder's show adds
    to the connection information; ``connection_info``: the one to show instead of the
    row's (a create's or an update's, on the row as read before)."""
    view = pb.VolumeAttachment(
        id=attachment.id,
        status=attachment.attach_status,
        instance=text_or_null(attachment.instance_uuid),
        volume_id=attachment.volume_id,
    )
    if not detail:
        return view
    view.attached_at = _time_or_empty(attachment.attach_time)
    view.detached_at = _time_or_empty(attachment.detach_time)
    view.attach_mode.CopyFrom(
        NULL if attachment.attach_mode is None else text_or_null(attachment.attach_mode)
    )
    info = (
        dict(connection_info)
        if connection_info is not None
        else attachments.connection_info_of(attachment)
    )
    if connection_format is not None and info:
        info["format"] = connection_format
    connection = struct_pb2.Struct()
    connection.update(info)
    view.connection_info.CopyFrom(connection)
    return view
