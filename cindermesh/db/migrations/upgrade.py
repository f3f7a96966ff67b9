"""Bringing a database's schema to the head revision: what every process runs at start.

The whole upgrade is one transaction holding the migration lock
(``cindermesh.db.migrations.connection``): of several processes starting at once, one
migrates and the others then find the database at head. A database made before migrations is
adopted first (``cindermesh.db.migrations.adoption``).

Alembic reads its scripts (``env.py``, ``versions/``) when it runs, on the event loop, as an
import would: small files, once per process at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, make_url

from cindermesh.db.migrations.adoption import BASELINE, adopt_unversioned
from cindermesh.db.migrations.config import alembic_config
from cindermesh.db.migrations.connection import (
    MigrationError,
    check_foreign_keys,
    migration_connection,
)
from cindermesh.db.migrations.environment import CONNECTION_ATTRIBUTE

__all__ = ["SchemaUpgrade", "current_revision", "head_revision", "upgrade_schema"]


@dataclass(frozen=True)
class SchemaUpgrade:
    """What an upgrade did."""

    #: The database, its password hidden.
    url: str
    #: Its revision before (None: it had no schema).
    before: str | None
    #: Its revision now.
    after: str
    #: Whether it was a database made before migrations, stamped at the baseline first.
    adopted: bool = False

    def describe(self) -> str:
        head = " (head)" if self.after == head_revision() else ""
        adopted = " (made before migrations: taken as the baseline)" if self.adopted else ""
        if self.before == self.after:
            return f"{self.url}: at revision {self.after}{head}{adopted}, nothing to upgrade"
        start = "empty" if self.before is None else f"revision {self.before}"
        return f"{self.url}: upgraded from {start}{adopted} to revision {self.after}{head}"


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no revision in cindermesh.db.migrations.versions")
    return head


def _check_known(revision: str, url: str) -> None:
    """A database at a revision this release does not have was upgraded by a newer one."""
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    if revision not in known:
        raise MigrationError(
            f"{url} is at revision {revision}, which this release of cindermesh does not have "
            f"(its head is {head_revision()}): a newer release upgraded it. Run that release, "
            "or restore the backup taken before its upgrade."
        )


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, target: str) -> None:
    config = alembic_config()
    config.attributes[CONNECTION_ATTRIBUTE] = connection
    command.upgrade(config, target)


def _shown(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def upgrade_schema(url: str | URL, target: str = "head") -> SchemaUpgrade:
    """Brings the database at ``url`` to the head revision (or ``target``, an earlier one,
    for tests); safe to run from several processes at once. Raises ``MigrationError``
    (nothing changed) when it cannot."""
    shown = _shown(url)
    async with migration_connection(url) as conn:
        before = await conn.run_sync(_current)
        if before is not None:
            _check_known(before, shown)
        adopted = before is None and await adopt_unversioned(conn, shown)
        await conn.run_sync(_upgrade, target)
        after = await conn.run_sync(_current)
        if after != before:
            await check_foreign_keys(conn)  # a scan of every table: only after a migration
    if after is None:
        raise RuntimeError(f"{shown}: no revision recorded after the upgrade")
    return SchemaUpgrade(shown, BASELINE if adopted else before, after, adopted)


async def current_revision(url: str | URL) -> str | None:
    """The database's revision (None: no schema made by migrations, or no SQLite file yet),
    once any migration in progress has ended."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return None
    async with migration_connection(url) as conn:
        return await conn.run_sync(_current)
