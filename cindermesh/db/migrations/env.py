"""The entry alembic runs; everything is in ``cindermesh.db.migrations.environment``."""

from cindermesh.db.migrations.environment import run_environment

run_environment()
