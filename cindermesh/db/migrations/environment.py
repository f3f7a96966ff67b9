"""Alembic's environment for cindermesh: the models, and how revisions are run and written.

Migrations always run on a connection handed over in ``config.attributes["connection"]``
(``cindermesh.db.migrations.connection`` opens it, in its transaction, holding the lock);
``env.py`` is only the entry alembic calls.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import cindermesh.db.models  # noqa: F401  (defines the tables on SQLModel.metadata)

__all__ = ["CONNECTION_ATTRIBUTE", "configure", "run_environment"]

#: The key of ``config.attributes`` that carries the connection to migrate.
CONNECTION_ATTRIBUTE = "connection"


def _render_item(type_: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """SQLModel's string type written as SQLAlchemy's, so that revisions import no SQLModel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def configure(connection: Connection) -> None:
    """Configures alembic's context to migrate ``connection`` to (or compare it with) the
    models.

    Batch mode: on SQLite an ALTER that it cannot do copies the table (elsewhere batch
    operations are plain ALTERs), so revisions are the same on every engine.
    """
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
    )


def run_environment() -> None:
    """What ``env.py`` runs: the migrations, in the connection's own transaction."""
    if context.is_offline_mode():
        raise RuntimeError("cindermesh's migrations run on a database, not as SQL (--sql)")
    connection = context.config.attributes.get(CONNECTION_ATTRIBUTE)
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "cindermesh's migrations run on the connection they are handed: "
            "use `cindermesh db upgrade`, not alembic's own command"
        )
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()
