"""A real single-node Ceph cluster (deploy/ceph) for the RBD driver's end-to-end tests. Ceph is
installed from Debian's packages on first use (one apt install, about a minute); a bootstrap then
takes about 10 s, and Debian's ``rados``/``rbd`` modules are made importable in this venv.

Use the session fixture ``ceph`` (``tests/e2e/conftest.py``), or your own::

    from tests.e2e.ceph import Ceph, connect, running_ceph

    @pytest.fixture(scope="session")
    def ceph(tmp_path_factory) -> Iterator[Ceph]:
        with running_ceph(tmp_path_factory.mktemp("ceph")) as started:
            yield started

Then ``ceph.conf``, ``ceph.keyring`` (``client.cinder``'s), ``ceph.client`` (``"cinder"``),
``ceph.pool`` (``"volumes"``), ``ceph.env()`` (``CEPH_CONF`` ...), ``ceph.ceph("df")`` and
``ceph.rbd("ls", "volumes")`` (CLIs, under a timeout), ``ceph.stop_osd()``/``ceph.start_osd()``
and ``ceph.pause_osd()``/``ceph.resume_osd()`` for fault tests, and ``connect(ceph)``: a connected
``rados.Rados`` as client.cinder (shut it down yourself). See ``deploy/ceph/ceph_cluster.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deploy.ceph.ceph_cluster import Ceph, install_bindings, start_ceph, stop_ceph

__all__ = ["Ceph", "connect", "ensure_bindings", "running_ceph"]


def ensure_bindings() -> None:
    """``import rados, rbd`` works here and in interpreters started later from this venv."""
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    path = str(install_bindings(venv))
    if path not in sys.path:
        sys.path.append(path)


@contextmanager
def running_ceph(state_dir: Path) -> Iterator[Ceph]:
    """The cluster with its state in ``state_dir`` (installed and bootstrapped as needed, the
    Python bindings in this venv), stopped on exit."""
    ceph = start_ceph(state_dir)
    ensure_bindings()
    try:
        yield ceph
    finally:
        stop_ceph(state_dir)


def connect(ceph: Ceph, timeout: int = 10, **conf: str) -> Any:
    """A connected ``rados.Rados`` as the cindermesh client (``conf``: extra options, e.g.
    ``rados_osd_op_timeout="3"``)."""
    ensure_bindings()
    import rados  # type: ignore[import-not-found,unused-ignore]

    cluster = rados.Rados(
        conffile=str(ceph.conf),
        name=f"client.{ceph.client}",
        conf={"keyring": str(ceph.keyring), **conf},
    )
    cluster.connect(timeout=timeout)
    return cluster
