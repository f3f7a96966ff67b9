"""The async engine and sessions; the schema's upgrade at start (by its migrations).

Two kinds of session: ``session()`` for work that writes (on SQLite it begins with
``BEGIN IMMEDIATE``, so writers from several processes queue on the busy timeout instead of
failing a lock upgrade) and ``read()`` for work that only reads (a plain deferred ``BEGIN``:
it never takes the write lock, so a held or stuck writer never blocks a read). Neither may be
interrupted by a client's cancellation: request handlers run their database work through
``cindermesh.shielding.run_to_completion``.

PostgreSQL (``database_url = "postgresql+asyncpg://..."``, the production database) runs at
READ COMMITTED, its default, with row locks, not SERIALIZABLE with retries. Every write that
depends on what it read either locks what it read (``SELECT ... FOR UPDATE``: the quota usages
and reservations, a volume row read before its change) or is one conditional UPDATE on the
state it expects (``cindermesh.db.volumes``: a loser matches no row and says so); a row that
may not exist yet is inserted with ``ON CONFLICT DO NOTHING`` before it is locked
(``cindermesh.db.quota``). That is Cinder's own way on MySQL/PostgreSQL, it holds on SQLite
too (whose ``BEGIN IMMEDIATE`` serialises the writers anyway, and ignores ``FOR UPDATE``), and
it never fails a transaction for a conflict another could have had: SERIALIZABLE would abort
the losers of every race (two creates in one project always conflict on its usage rows) and
need every transaction written to be replayed from its start, including the RPCs some make
after their reads. Each process keeps a small pool (``POSTGRES_POOL_SIZE`` connections, up to
``POSTGRES_MAX_OVERFLOW`` more under bursts), checked before use so that a restarted server
costs no failed request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.migrations.upgrade import SchemaUpgrade, upgrade_schema
from cindermesh.settings import Settings

__all__ = [
    "POSTGRES_MAX_OVERFLOW",
    "POSTGRES_POOL_SIZE",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Database",
    "open_database",
]

#: How long a SQLite statement waits for another process's write lock before it fails (the
#: api then answers 503); below Envoy's route timeout so that the client gets Cinder's answer.
SQLITE_BUSY_TIMEOUT_MS = 10_000
_READ_ONLY = "cindermesh_read_only"
#: Connections each process keeps open to PostgreSQL, and how many more a burst may open (a
#: deployment of N processes needs N x their sum below the server's ``max_connections``).
POSTGRES_POOL_SIZE = 5
POSTGRES_MAX_OVERFLOW = 15
#: Seconds a session waits for a pooled connection before the request fails (503).
_POOL_TIMEOUT = 30


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; transactions are begun explicitly below as
    # BEGIN IMMEDIATE, so that concurrent writers from several processes wait on the busy
    # timeout instead of failing a lock upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    read_only = conn.get_execution_options().get(_READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    """The engine and a session factory; one per process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            engine.execution_options(**{_READ_ONLY: True}),
            class_=AsyncSession,
            expire_on_commit=False,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: it never takes SQLite's write lock."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def create_schema(self) -> SchemaUpgrade:
        """Brings the schema to the head revision by its migrations (``cindermesh.db.migrations``,
        the only way the schema is made or changed); safe with several processes at once."""
        return await upgrade_schema(self.engine.url)

    async def close(self) -> None:
        await self.engine.dispose()


def open_database(settings: Settings) -> Database:
    url = settings.db_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite has one writer at a time anyway, and sessions
        # queueing for the pool (FIFO, no sleep) beat connections retrying a busy lock (the
        # busy handler sleeps up to 100 ms between tries). WAL keeps readers unblocked.
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    elif url.startswith("postgresql"):
        engine = create_async_engine(
            url,
            isolation_level="READ COMMITTED",
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_MAX_OVERFLOW,
            pool_timeout=_POOL_TIMEOUT,
            pool_pre_ping=True,
        )
    else:
        raise ValueError(f"database_url {url!r}: expected sqlite+aiosqlite or postgresql+asyncpg")
    return Database(engine)
