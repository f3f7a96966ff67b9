"""The database schema's migrations (alembic): the only way the schema is made or changed.

Not to be confused with volume migrations between backends (``cindermesh.db.migrations_state``).

- ``config``: alembic's configuration, built in code from this package's place (no
  ``alembic.ini``): the same from a clone and from an installed package.
- ``env.py`` / ``environment``: alembic's environment, run on the connection it is handed.
- ``versions/``: the revisions, ``0001`` (the schema every database starts with, and its
  ``__DEFAULT__`` volume type) and those after it.
- ``connection``: the connection a migration runs on, holding the lock that serialises the
  processes migrating one database at the same moment.
- ``upgrade``: :func:`upgrade_schema` (what every process runs at start), and the revision a
  database is at.
- ``adoption``: a database made before migrations (tables, no ``alembic_version``).
- ``revision``: a new revision from the difference between the models and the head.
"""
