"""A database made before migrations: cindermesh's tables, no ``alembic_version``.

Until migrations, every process made the schema with ``create_all``, so an operator's
database from then (e.g. the embedded ``./data``) has the tables of the models of its day and
no revision. If its tables and columns are exactly those of the baseline revision, it is that
revision without the record: it is stamped so, and upgraded from there. Anything else is not a
schema a revision can start from, and the upgrade stops with a message saying what differs and
what to do; nothing is changed.
"""

from __future__ import annotations

import asyncio
import functools

from alembic import command
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from cindermesh.db.migrations.config import alembic_config
from cindermesh.db.migrations.connection import MigrationError
from cindermesh.db.migrations.environment import CONNECTION_ATTRIBUTE

__all__ = ["BASELINE", "adopt_unversioned", "baseline_columns", "table_columns"]

#: The revision a database made before migrations is: the schema as migrations found it.
BASELINE = "0001"
_VERSION_TABLE = "alembic_version"

Columns = dict[str, frozenset[str]]


def table_columns(connection: Connection) -> Columns:
    """Each table of ``connection``'s database (but alembic's) and its column names."""
    inspector = inspect(connection)
    return {
        table: frozenset(column["name"] for column in inspector.get_columns(table))
        for table in inspector.get_table_names()
        if table != _VERSION_TABLE
    }


@functools.cache
def baseline_columns() -> Columns:
    """The baseline revision's tables and columns, from a scratch in-memory database
    migrated to it (blocking: run it off the event loop)."""
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes[CONNECTION_ATTRIBUTE] = connection
            command.upgrade(config, BASELINE)
            return table_columns(connection)
    finally:
        engine.dispose()


def _differences(found: Columns, expected: Columns) -> list[str]:
    missing = [f"table {table}" for table in sorted(expected.keys() - found.keys())]
    for table in sorted(expected.keys() & found.keys()):
        missing += [f"{table}.{column}" for column in sorted(expected[table] - found[table])]
        missing += [
            f"{table}.{column} (unknown)" for column in sorted(found[table] - expected[table])
        ]
    return missing


def _stamp(connection: Connection) -> None:
    config = alembic_config()
    config.attributes[CONNECTION_ATTRIBUTE] = connection
    command.stamp(config, BASELINE)


async def adopt_unversioned(conn: AsyncConnection, url: str) -> bool:
    """Stamps ``conn``'s database, which has no revision, at the baseline if it has the
    baseline's tables (True); False if it has none of cindermesh's tables (an empty database,
    to be made by the migrations). Raises ``MigrationError`` when it has some but they differ.
    Tables that are not cindermesh's are left alone."""
    found = await conn.run_sync(table_columns)
    if not found:
        return False
    expected = await asyncio.to_thread(baseline_columns)
    ours = {table: columns for table, columns in found.items() if table in expected}
    if not ours:
        return False
    differences = _differences(ours, expected)
    if differences:
        shown = ", ".join(differences[:20]) + (" ..." if len(differences) > 20 else "")
        raise MigrationError(
            f"{url} has cindermesh's tables but no {_VERSION_TABLE} table (made before "
            f"migrations), and they are not revision {BASELINE}'s: they differ in {shown}. "
            "Nothing was changed. Back the database up, then either move it away (the next "
            "start makes an empty one) or bring its tables to revision "
            f"{BASELINE}'s columns, and run `cindermesh db upgrade` again."
        )
    await conn.run_sync(_stamp)
    return True
