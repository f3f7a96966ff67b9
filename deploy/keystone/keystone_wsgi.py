"""Keystone's WSGI application for gunicorn, which parses ``sys.argv`` before oslo.config would
(Keystone would then refuse gunicorn's options): the arguments are cleared first. The
configuration file comes from ``OS_KEYSTONE_CONFIG_FILES``."""

import sys

del sys.argv[1:]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
