"""The schema's migrations, on SQLite and on PostgreSQL: an empty database upgraded to head,
one at the baseline with rows in it upgraded keeping them, the models matching the migrated
schema, two real processes migrating one fresh database at the same moment, and a database
made before migrations (adopted, or refused leaving it as it was)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from cindermesh.cli import main
from cindermesh.db.migrations.adoption import BASELINE
from cindermesh.db.migrations.connection import (
    MigrationError,
    check_foreign_keys,
    migration_connection,
)
from cindermesh.db.migrations.revision import differences
from cindermesh.db.migrations.upgrade import head_revision, upgrade_schema

TABLES = {*SQLModel.metadata.tables, "alembic_version"}
NOW = dt.datetime(2026, 1, 2, 3, 4, 5)


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of the test's own, in a transaction committed at the end."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with connected(url) as conn:
        return [tuple(row) for row in (await conn.execute(text(sql), params)).fetchall()]


async def tables(url: str) -> set[str]:
    async with connected(url) as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def default_types(url: str) -> list[tuple[Any, ...]]:
    return await query(url, "SELECT name FROM volume_types WHERE name = '__DEFAULT__'")


async def test_an_empty_database_is_upgraded_to_head(database_url: str) -> None:
    upgrade = await upgrade_schema(database_url)

    assert (upgrade.before, upgrade.after, upgrade.adopted) == (None, head_revision(), False)
    assert await tables(database_url) == TABLES
    assert await query(database_url, "SELECT version_num FROM alembic_version") == [
        (head_revision(),)
    ]
    assert await default_types(database_url) == [("__DEFAULT__",)]
    again = await upgrade_schema(database_url)
    assert (again.before, again.after) == (head_revision(), head_revision())
    assert "nothing to upgrade" in again.describe()
    assert await default_types(database_url) == [("__DEFAULT__",)]


async def test_the_models_match_the_migrated_schema(database_url: str) -> None:
    await upgrade_schema(database_url)

    async with connected(database_url) as conn:
        assert await conn.run_sync(differences) == []


def test_every_constraint_and_index_of_the_models_has_a_name() -> None:
    """Named by ``NAMING_CONVENTION``, so that a migration names it the same on every engine
    (an unnamed one gets a name of the server's choosing, which a later revision cannot
    drop by name)."""
    unnamed = [
        f"{table.name}: {type(item).__name__}"
        for table in SQLModel.metadata.tables.values()
        for item in [*table.constraints, *table.indexes]
        if not item.name
    ]
    assert unnamed == []


async def add_rows_of_the_baseline(url: str) -> None:
    """Rows as revision 0001's tables take them (its columns only)."""
    async with connected(url) as conn:
        for sql, params in [
            (
                "INSERT INTO volume_types (id, name, description, is_public, created_at)"
                " VALUES ('t-gold', 'gold', 'fast', :true, :now)",
                {},
            ),
            (
                "INSERT INTO volume_type_extra_specs (volume_type_id, key, value)"
                " VALUES ('t-gold', 'volume_backend_name', 'file-1')",
                {},
            ),
            (
                "INSERT INTO volumes (id, project_id, user_id, name, size, status,"
                " availability_zone, volume_type_id, host, bootable, multiattach,"
                " attach_status, pending_reservations, quota_held, schedule_attempts,"
                " tried_hosts, created_at) VALUES ('v-1', 'p1', 'u1', 'a', 3, 'available',"
                " 'nova', 't-gold', 'h@file-1#file-1', :false, :false, 'detached', '',"
                " :true, 1, '', :now)",
                {},
            ),
            (
                "INSERT INTO volume_metadata (volume_id, key, value) VALUES ('v-1', 'k', 'v')",
                {},
            ),
            (
                "INSERT INTO quota_usages (project_id, resource, in_use, reserved)"
                " VALUES ('p1', 'volumes', 1, 0), ('p1', 'gigabytes', 3, 0)",
                {},
            ),
            (
                "INSERT INTO reservations (id, project_id, resource, delta, created_at)"
                " VALUES ('r-1', 'p1', 'volumes', 1, :now)",
                {},
            ),
        ]:
            await conn.execute(text(sql), {"true": True, "false": False, "now": NOW, **params})


async def test_a_database_at_the_baseline_with_rows_is_upgraded_keeping_them(
    database_url: str,
) -> None:
    assert (await upgrade_schema(database_url, BASELINE)).after == BASELINE
    await add_rows_of_the_baseline(database_url)

    upgrade = await upgrade_schema(database_url)

    assert (upgrade.before, upgrade.after) == (BASELINE, head_revision())
    assert await query(database_url, "SELECT id, name, size, host FROM volumes") == [
        ("v-1", "a", 3, "h@file-1#file-1")
    ]
    assert await query(database_url, "SELECT key, value FROM volume_metadata") == [("k", "v")]
    assert await query(database_url, "SELECT name FROM volume_types ORDER BY name") == [
        ("__DEFAULT__",),
        ("gold",),
    ]
    assert await query(database_url, "SELECT key FROM volume_type_extra_specs") == [
        ("volume_backend_name",)
    ]
    assert sorted(
        await query(database_url, "SELECT resource, in_use, reserved FROM quota_usages")
    ) == [("gigabytes", 3, 0), ("volumes", 1, 0)]
    assert await query(database_url, "SELECT id, delta FROM reservations") == [("r-1", 1)]


#: A process that imports all it needs, says so, and runs ``cindermesh db upgrade`` when told:
#: two of them are released at the same moment.
UPGRADE_WHEN_TOLD = (
    "import sys\n"
    "import cindermesh.cli, cindermesh.launcher, cindermesh.db.engine\n"
    "import cindermesh.db.migrations.upgrade, cindermesh.db.migrations.adoption\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "sys.exit(cindermesh.cli.main(['db', 'upgrade']))\n"
)


def service_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINDERMESH_")}
    return env | {"CINDERMESH_DATA_DIR": str(tmp_path), "CINDERMESH_DATABASE_URL": database_url}


async def test_two_processes_migrating_at_the_same_moment_make_one_schema(
    database_url: str, tmp_path: Path
) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            UPGRADE_WHEN_TOLD,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=service_env(tmp_path, database_url),
        )
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
    outputs = await asyncio.gather(*(process.communicate() for process in processes))

    assert [process.returncode for process in processes] == [0, 0], outputs
    said = sorted(out.decode() for out, _ in outputs)
    assert "upgraded from empty to revision" in said[1], said
    assert "nothing to upgrade" in said[0], said
    assert await tables(database_url) == TABLES
    assert await query(database_url, "SELECT version_num FROM alembic_version") == [
        (head_revision(),)
    ]
    assert await default_types(database_url) == [("__DEFAULT__",)]


async def made_before_migrations(url: str) -> None:
    """A database as ``create_all`` made them before migrations: the baseline's tables and
    rows, no ``alembic_version``."""
    await upgrade_schema(url, BASELINE)
    await add_rows_of_the_baseline(url)
    async with connected(url) as conn:
        await conn.execute(text("DROP TABLE alembic_version"))


async def test_a_database_made_before_migrations_is_taken_as_the_baseline(
    database_url: str,
) -> None:
    await made_before_migrations(database_url)

    upgrade = await upgrade_schema(database_url)

    assert (upgrade.before, upgrade.after, upgrade.adopted) == (BASELINE, head_revision(), True)
    assert "made before migrations" in upgrade.describe()
    assert await query(database_url, "SELECT id FROM volumes") == [("v-1",)]
    assert await default_types(database_url) == [("__DEFAULT__",)]
    assert await tables(database_url) == TABLES


async def test_a_database_made_before_migrations_that_differs_is_refused_as_it_was(
    database_url: str,
) -> None:
    await made_before_migrations(database_url)
    async with connected(database_url) as conn:
        await conn.execute(text("DROP TABLE volume_placements"))
        await conn.execute(text("ALTER TABLE volumes ADD COLUMN legacy VARCHAR(10)"))
    before = await tables(database_url)

    with pytest.raises(MigrationError) as refused:
        await upgrade_schema(database_url)

    message = str(refused.value)
    assert "no alembic_version table" in message
    assert "table volume_placements" in message
    assert "volumes.legacy (unknown)" in message
    assert "cindermesh db upgrade" in message
    assert await tables(database_url) == before
    assert "alembic_version" not in before


async def test_a_database_upgraded_by_a_newer_release_is_refused_as_it_was(
    database_url: str,
) -> None:
    await upgrade_schema(database_url)
    async with connected(database_url) as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(MigrationError, match="at revision 9999, which this release"):
        await upgrade_schema(database_url)

    assert await query(database_url, "SELECT version_num FROM alembic_version") == [("9999",)]


async def test_a_row_left_with_a_broken_foreign_key_fails_the_migration(tmp_path: Path) -> None:
    """SQLite migrates with its foreign keys off (batch mode recreates tables): they are
    checked before the commit instead."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cindermesh.db'}"
    await upgrade_schema(url)

    with pytest.raises(MigrationError, match="volume_metadata row 1 -> volumes"):
        async with migration_connection(url) as conn:
            await conn.execute(
                text("INSERT INTO volume_metadata VALUES ('no-such-volume', 'k', 'v')")
            )
            await check_foreign_keys(conn)

    assert await query(url, "SELECT * FROM volume_metadata") == []


def test_the_db_commands_upgrade_and_tell_the_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [k for k in os.environ if k.startswith("CINDERMESH_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CINDERMESH_DATA_DIR", str(tmp_path / "data"))
    head = head_revision()

    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"none (no schema) (head: {head})\n"
    assert main(["db", "upgrade"]) == 0
    assert f"upgraded from empty to revision {head} (head)" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"{head} (head: {head})\n"
