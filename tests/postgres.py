"""The database the tests run on: SQLite (the embedded default) or a real PostgreSQL.

``CINDERMESH_TEST_DATABASE=postgresql`` runs the end-to-end clusters on PostgreSQL (default
``sqlite``); the unit tests of the database layer run on both whatever it says. The PostgreSQL
server is ``deploy/postgres/up``'s throwaway cluster (installed and started on first use, left
running for the next run; ``deploy/postgres/down`` stops it), and every test or cluster gets
a database of its own (:func:`fresh_database`).

:func:`rows` and :func:`execute` read and write either engine by the URL the services use,
with ``?`` placeholders, so that a test's SQL is the same on both.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

__all__ = [
    "DATABASE_ENV",
    "ENGINES",
    "chosen_engine",
    "database_url_for",
    "drop_database",
    "execute",
    "fresh_database",
    "rows",
    "server_url",
    "sqlite_only",
]

DATABASE_ENV = "CINDERMESH_TEST_DATABASE"
ENGINES = ("sqlite", "postgresql")
_ROOT = Path(__file__).resolve().parent.parent

#: Marks a test about SQLite itself (its file, its locks): skipped when the clusters run on
#: PostgreSQL.
sqlite_only = pytest.mark.skipif(
    os.environ.get(DATABASE_ENV, "sqlite") == "postgresql",
    reason="about SQLite itself (its database file and locks)",
)


def chosen_engine() -> str:
    """The engine the end-to-end clusters run on (``CINDERMESH_TEST_DATABASE``)."""
    engine = os.environ.get(DATABASE_ENV, "sqlite")
    if engine not in ENGINES:
        raise ValueError(f"{DATABASE_ENV}={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


@functools.cache
def server_url() -> str:
    """The test PostgreSQL server's admin URL (libpq form), started if it is not running."""
    done = subprocess.run(
        [str(_ROOT / "deploy" / "postgres" / "up")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/postgres/up failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def fresh_database(prefix: str = "t", template: str | None = None) -> str:
    """A new database on the test server, empty or a copy of the ``template`` database's
    (named by its URL; nobody may be connected to it); its SQLAlchemy (asyncpg) URL. It is
    dropped when the test run ends, if no test dropped it before (:func:`drop_database`)."""
    name = f"{re.sub(r'[^a-z0-9_]', '_', prefix.lower())[:30]}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    if not _made:
        atexit.register(_drop_made)
    _made.add(name)
    base = server_url().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    """Drops a database :func:`fresh_database` made (its connections closed first)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _made.discard(name)


#: The databases made by this run and not dropped yet.
_made: set[str] = set()


def _drop_made() -> None:
    with psycopg.connect(server_url(), autocommit=True) as conn:
        for name in sorted(_made):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _made.clear()


def database_url_for(data_dir: Path, engine: str | None = None) -> str:
    """The URL a test cluster's services use: SQLite's file in ``data_dir`` (as with no
    ``database_url`` set), or a fresh PostgreSQL database (``engine``, default the chosen)."""
    if (engine or chosen_engine()) == "postgresql":
        return fresh_database(data_dir.parent.name)
    return f"sqlite+aiosqlite:///{data_dir / 'cindermesh.db'}"


def _libpq(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query`` (``?`` placeholders) on the database at ``url``."""
    if url.startswith("sqlite"):
        with sqlite3.connect(_sqlite_path(url), timeout=30) as conn:
            return list(conn.execute(query, params))
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        cursor = conn.execute(query.replace("?", "%s"), params)
        return list(cursor.fetchall()) if cursor.description else []


def execute(url: str, statement: str, *params: Any) -> None:
    """Runs ``statement`` (``?`` placeholders) in a transaction of its own."""
    if url.startswith("sqlite"):
        with sqlite3.connect(_sqlite_path(url), timeout=30) as conn:
            conn.execute(statement, params)
        return
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(statement.replace("?", "%s"), params)
