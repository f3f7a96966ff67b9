"""A new revision: what the models have that the schema at head does not, as a script.

The head is made in a scratch in-memory SQLite database (every revision run from an empty
one), compared with the models by alembic's autogenerate, and the difference written into
``versions/`` under the next number. Read it before committing it: autogenerate sees tables,
columns, types, nullability, indexes, unique and foreign key constraints, not renames (it
writes a drop and an add) nor the rows a data migration must change. This writes into the
package's own folder, so it is a command for a clone (an editable install), not a deployment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from cindermesh.db.migrations.config import alembic_config
from cindermesh.db.migrations.connection import MigrationError
from cindermesh.db.migrations.environment import CONNECTION_ATTRIBUTE

__all__ = ["differences", "new_revision", "next_revision_id"]


def differences(connection: Connection) -> list[Any]:
    """Alembic's list of what the models have that ``connection``'s schema has not (and the
    other way round); empty when they match."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def next_revision_id() -> str:
    """The number after the head's, four digits."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return f"{int(head or 0) + 1:04d}"


def new_revision(message: str) -> Path:
    """Writes the revision that brings the head to the models, and answers its file.

    Blocking (it writes a file): for the command line, not for a service's event loop.
    """
    config = alembic_config()
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as connection:
            config.attributes[CONNECTION_ATTRIBUTE] = connection
            command.upgrade(config, "head")
            if not differences(connection):
                raise MigrationError("the models match the head revision: nothing to write")
            script = command.revision(
                config, message=message, autogenerate=True, rev_id=next_revision_id()
            )
    finally:
        engine.dispose()
    if script is None or isinstance(script, list):
        raise MigrationError("alembic wrote no single revision")
    path = Path(script.path)
    _format(path)
    return path


def _format(path: Path) -> None:
    """Lints and formats the new file as the rest of the code, when ruff is installed (the
    test extras)."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return
    subprocess.run([ruff, "format", "--quiet", str(path)], check=False)
    subprocess.run([ruff, "check", "--fix", "--quiet", str(path)], check=False)
