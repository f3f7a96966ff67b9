"""A real Keystone and a cindermesh that authenticates with it, for end-to-end tests and the
Tempest runner. Keystone is installed into ``<repo>/.venv-keystone`` on first use (one pip
install, a few minutes), then each start takes seconds.

Use from a test module (session-scoped, as in ``tests/e2e/test_keystone.py``)::

    from tests.e2e.keystone import keystone_cluster, running_keystone

    @pytest.fixture(scope="session")
    def keystone(tmp_path_factory) -> Iterator[Keystone]:
        with running_keystone(tmp_path_factory.mktemp("keystone")) as started:
            yield started

    @pytest.fixture(scope="session")
    def ks_cluster(tmp_path_factory, keystone) -> Iterator[Cluster]:
        with keystone_cluster(tmp_path_factory.mktemp("ks-cluster"), keystone) as cluster:
            yield cluster  # the volume service is in Keystone's catalog at cluster.rest_url

Then ``keystone.admin()`` (Identity v3: ``ensure_project``, ``ensure_user``),
``keystone.issue_token(user, password, project)``, ``keystone.env()`` (the admin's ``OS_*``),
``keystone.auth_url``; see ``deploy/keystone/keystone_up.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.keystone.keystone_up import Keystone, start_keystone, stop_keystone
from tests.e2e.cluster import Cluster, make_cluster

__all__ = ["Keystone", "keystone_cluster", "make_keystone_cluster", "running_keystone"]


@contextmanager
def running_keystone(state_dir: Path) -> Iterator[Keystone]:
    """Keystone with its state in ``state_dir``, stopped on exit."""
    keystone = start_keystone(state_dir)
    try:
        yield keystone
    finally:
        stop_keystone(state_dir)


def make_keystone_cluster(
    base: Path, keystone: Keystone, quotas: dict[str, int] | None = None
) -> Cluster:
    """``make_cluster``'s product with ``auth_strategy = "keystone"`` against ``keystone``."""
    cluster = make_cluster(base, quotas)
    config = cluster.config_path.read_text()
    config = config.replace("\n[api]\n", '\n[api]\nauth_strategy = "keystone"\n', 1)
    cluster.config_path.write_text(f"{config}\n{keystone.authtoken_section()}")
    return cluster


@contextmanager
def keystone_cluster(
    base: Path,
    keystone: Keystone,
    quotas: dict[str, int] | None = None,
    register: bool = True,
) -> Iterator[Cluster]:
    """A started keystone-auth cindermesh (stopped on exit); with ``register``, its REST URL is
    the catalog's ``volumev3`` and ``block-storage`` endpoint (region RegionOne)."""
    cluster = make_keystone_cluster(base, keystone, quotas)
    if register:
        keystone.register_volume_service(cluster.rest_url)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
