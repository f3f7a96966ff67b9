"""The connection a migration runs on: its own, in one transaction that holds the lock.

Every process upgrades the schema at start, so several may try at the same moment. Each runs
its whole upgrade (reading the revision, migrating, recording the new one) in one transaction
that first takes the database's migration lock; the others wait for it, and then find the
database at head. On PostgreSQL the lock is a transaction-level advisory lock; on SQLite it is
the write lock itself (``BEGIN IMMEDIATE``): its DDL is transactional, so a migration that
fails leaves nothing behind on either.

On SQLite the connection runs with ``PRAGMA foreign_keys=OFF`` (it can only be set outside a
transaction): batch mode copies a table to alter it, and dropping the old one would otherwise
run its ``ON DELETE CASCADE``; the foreign keys are checked before the commit instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

__all__ = [
    "LOCK_TIMEOUT_S",
    "POSTGRES_LOCK_KEY",
    "MigrationError",
    "check_foreign_keys",
    "migration_connection",
]

#: How long a process waits for another's migration (or a lock a migration needs) before it
#: fails, seconds.
LOCK_TIMEOUT_S = 300
#: The advisory lock key of cindermesh's schema on PostgreSQL ("cinder" in ASCII).
POSTGRES_LOCK_KEY = 0x63696E646572


class MigrationError(RuntimeError):
    """The schema could not be brought to head; the message says why and what to do."""


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions begun below, explicitly
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA journal_mode=WAL")  # the product's mode (it stays with the file)
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise MigrationError(f"{url}: an in-memory SQLite database cannot be migrated")
        engine = create_async_engine(
            url, poolclass=NullPool, connect_args={"timeout": LOCK_TIMEOUT_S}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    if url.get_backend_name() == "postgresql":
        return create_async_engine(url, poolclass=NullPool)
    raise MigrationError(f"{url}: migrations run on SQLite or PostgreSQL only")


@asynccontextmanager
async def migration_connection(url: str | URL) -> AsyncIterator[AsyncConnection]:
    """A connection of its own to ``url`` in a transaction holding the migration lock;
    committed when the block ends, rolled back if it raises."""
    engine = _engine(make_url(url))
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY}
                )
            yield conn
    finally:
        await engine.dispose()


async def check_foreign_keys(conn: AsyncConnection) -> None:
    """Fails if a migration left a row whose foreign key points at nothing (SQLite, where
    they are not enforced while migrating; PostgreSQL enforces them)."""
    if conn.dialect.name != "sqlite":
        return
    result = await conn.exec_driver_sql("PRAGMA foreign_key_check")
    broken = [tuple(row) for row in result.fetchall()]
    if broken:
        found = ", ".join(
            f"{table} row {rowid} -> {parent}" for table, rowid, parent, *_ in broken[:10]
        )
        raise MigrationError(f"the migration left rows with broken foreign keys: {found}")
