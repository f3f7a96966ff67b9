"""Alembic's configuration, built in code: no ``alembic.ini`` is read.

The scripts are found next to this module, so the same configuration serves a clone and an
installed package. Revisions are numbered (``0001``, ``0002``...) and their files named
``<number>_<slug>.py``.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

__all__ = ["SCRIPT_DIRECTORY", "VERSIONS_DIRECTORY", "alembic_config"]

SCRIPT_DIRECTORY = Path(__file__).resolve().parent
VERSIONS_DIRECTORY = SCRIPT_DIRECTORY / "versions"


def alembic_config() -> Config:
    """A fresh configuration (its ``attributes`` carry the connection to run on)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_DIRECTORY))
    config.set_main_option("version_locations", str(VERSIONS_DIRECTORY))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("truncate_slug_length", "40")
    return config
