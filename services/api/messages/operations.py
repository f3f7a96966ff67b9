"""User messages: list, show and delete a project's (every project's for admins), newest first.

The messages are recorded by whoever fails the user's work, in the transaction that records
the failure (``cindermesh.db.messages.record_message``; e.g. ``cindermesh.db.volumes`` when a
create ends in ``error``); the api only reads and deletes them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from sqlmodel import col, select

from cindermesh.db.engine import Database
from cindermesh.db.models import Message
from cindermesh.errors import InvalidInput, NotFound
from services.api.edge.request_context import RequestContext
from services.api.schema import UUID_LIKE, validate_integer

__all__ = ["MESSAGES_VERSION", "MessageOperations", "MessageQuery"]

#: Messages appeared in 3.3; filters, pagination and sorting in 3.5.
MESSAGES_VERSION = 3
PAGINATION_VERSION = 5
SORT_KEYS = ("created_at", "id", "event_id", "message_level", "resource_type", "request_id")
FILTERS = ("event_id", "resource_type", "resource_uuid", "message_level", "request_id")


class MessageQuery:
    """3.5's list parameters, checked as Cinder's ``get_pagination_params``/``get_sort_params``."""

    def __init__(
        self,
        limit: str | None = None,
        marker: str | None = None,
        offset: str | None = None,
        sort: str | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> None:
        self.limit = validate_integer("limit", limit, 0) if limit is not None else None
        self.offset = validate_integer("offset", offset, 0) if offset is not None else 0
        self.marker = marker
        self.filters = filters or {}
        self.sort: list[tuple[str, str]] = []
        if sort is not None and (sort_key is not None or sort_dir is not None):
            raise InvalidInput(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used "
                "with the 'sort' parameter."
            )
        if sort:
            for item in sort.split(","):
                key, _, direction = item.strip().partition(":")
                self.sort.append((key.strip(), (direction or "desc").strip().lower()))
        elif sort_key or sort_dir:
            self.sort.append(((sort_key or "created_at").strip(), (sort_dir or "desc").lower()))
        for key, direction in self.sort:
            if key not in SORT_KEYS:
                raise InvalidInput(f"Invalid input received: Invalid sort key {key}")
            if direction not in ("asc", "desc"):
                raise InvalidInput(f"Invalid input received: Invalid sort dir {direction}")
        if not self.sort:
            self.sort = [("created_at", "desc")]
        if all(k != "id" for k, _ in self.sort):
            self.sort.append(("id", self.sort[0][1]))


def _sort_value(message: Message, key: str) -> str:
    """Comparable text: ``created_at`` in its ISO form, a missing value as empty."""
    value = getattr(message, key)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return "" if value is None else str(value)


class MessageOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _visible(self, ctx: RequestContext) -> str | None:
        """The project whose messages the caller sees; None: all (admins, as Cinder)."""
        return None if ctx.caller.is_admin else ctx.caller.project_id

    async def list(self, ctx: RequestContext, query: MessageQuery) -> Sequence[Message]:
        project = self._visible(ctx)
        statement = select(Message).where(col(Message.deleted).is_(False))
        if project is not None:
            statement = statement.where(col(Message.project_id) == project)
        for key, value in query.filters.items():
            statement = statement.where(getattr(Message, key) == value)
        async with self._db.read() as session:
            rows = list(await session.exec(statement))
        for key, direction in reversed(query.sort):
            rows.sort(key=functools.partial(_sort_value, key=key), reverse=direction == "desc")
        if query.marker is not None:
            ids = [m.id for m in rows]
            if query.marker not in ids:
                raise NotFound(f"Marker {query.marker} could not be found.")
            rows = rows[ids.index(query.marker) + 1 :]
        rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return rows

    async def get(self, ctx: RequestContext, message_id: str) -> Message:
        project = self._visible(ctx)
        async with self._db.read() as session:
            message = (
                await session.get(Message, message_id) if UUID_LIKE.match(message_id) else None
            )
        if (
            message is None
            or message.deleted
            or (project is not None and message.project_id != project)
        ):
            raise NotFound(f"Message {message_id} could not be found.")
        return message

    async def delete(self, ctx: RequestContext, message_id: str) -> None:
        message = await self.get(ctx, message_id)
        async with self._db.session() as session:
            row = await session.get(Message, message.id, with_for_update=True)
            if row is None or row.deleted:
                raise NotFound(f"Message {message_id} could not be found.")
            row.deleted = True
            session.add(row)
