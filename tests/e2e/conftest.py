from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.keystone.keystone_up import Keystone
from tests.e2e.ceph import Ceph, running_ceph
from tests.e2e.cluster import Cluster, make_cluster
from tests.e2e.keystone import keystone_cluster, running_keystone
from tests.e2e.otlp_receiver import OtlpReceiver


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, otlp_receiver: OtlpReceiver
) -> Iterator[Cluster]:
    """The product as `cindermesh up` runs it, exporting spans to a real OTLP receiver."""
    running = make_cluster(tmp_path_factory.mktemp("cluster"), quotas={"volumes": 50})
    running.start(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
    )
    yield running
    running.stop()


@pytest.fixture()
def project() -> str:
    import uuid

    return uuid.uuid4().hex


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A real Keystone (deploy/keystone), shared by the modules that need one."""
    with running_keystone(tmp_path_factory.mktemp("keystone")) as started:
        yield started


@pytest.fixture(scope="session")
def ks_cluster(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Cluster]:
    """The product with Keystone auth, in Keystone's catalog."""
    with keystone_cluster(tmp_path_factory.mktemp("ks-cluster"), keystone) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceph]:
    """A real single-node Ceph (deploy/ceph: pool ``volumes``, user ``client.cinder``), with
    ``rados``/``rbd`` importable; installed from Debian's packages on first use."""
    with running_ceph(tmp_path_factory.mktemp("ceph")) as started:
        yield started
