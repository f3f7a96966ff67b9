"""Rows inserted unless they exist, in one statement that tolerates a concurrent insert of the
same key: PostgreSQL's ``INSERT ... ON CONFLICT DO NOTHING`` (which waits for the other
transaction and then does nothing), SQLite's ``INSERT OR IGNORE`` form of it.

A check-then-insert (``SELECT``, then ``session.add`` of what was missing) is a unique
violation on PostgreSQL when two transactions both find the row missing: at READ COMMITTED a
row that does not exist yet cannot be locked. Insert it this way first, then lock it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["insert_missing"]


async def insert_missing(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> None:
    """Inserts those of ``rows`` (column values of ``model``'s table) whose primary key is not
    there yet; the others are left as they are."""
    if not rows:
        return
    table: Any = model.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
    await session.exec(statement)
