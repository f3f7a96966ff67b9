"""Helpers for unit tests that set up rows the way another process would have left them."""

from __future__ import annotations

import datetime as dt

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, utcnow

__all__ = ["ago", "later", "update_row"]


async def update_row(db: Database, volume_id: str, **values: object) -> None:
    """Writes columns of a row directly, as another process would."""
    async with db.session() as session:
        volume = await session.get(Volume, volume_id, with_for_update=True)
        assert volume is not None
        for name, value in values.items():
            setattr(volume, name, value)


def ago(seconds: float) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=seconds)


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)
