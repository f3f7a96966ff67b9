from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, make_cluster
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
