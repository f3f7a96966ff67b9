"""The api process: explicit wiring of the VolumeService and its dependencies."""

from __future__ import annotations

import argparse
import asyncio

import grpc

from cindermesh.db.engine import open_database
from cindermesh.grpc_server import Drain, create_server, serve_until_signal
from cindermesh.health import Health, database_dependency
from cindermesh.settings import (
    GRPC_MAX_METADATA_BYTES,
    Settings,
    configured_replica,
    load_settings,
)
from cindermesh.telemetry.logs import setup_logging
from cindermesh.telemetry.tracing import setup_tracing
from cindermesh_pb.api.v1 import (
    action_service_pb2,
    action_service_pb2_grpc,
    attachment_service_pb2,
    attachment_service_pb2_grpc,
    group_service_pb2,
    group_service_pb2_grpc,
    info_service_pb2,
    info_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
    placement_service_pb2,
    placement_service_pb2_grpc,
    qos_service_pb2,
    qos_service_pb2_grpc,
    quota_service_pb2,
    quota_service_pb2_grpc,
    snapshot_service_pb2,
    snapshot_service_pb2_grpc,
    transfer_service_pb2,
    transfer_service_pb2_grpc,
    type_service_pb2,
    type_service_pb2_grpc,
    version_service_pb2,
    version_service_pb2_grpc,
    volume_action_service_pb2,
    volume_action_service_pb2_grpc,
    volume_service_pb2,
    volume_service_pb2_grpc,
)
from services.api.attachments.operations import AttachmentOperations
from services.api.attachments.servicer import AttachmentServicer
from services.api.clients import SchedulerClient, VolumeManagerClients
from services.api.edge.auth import Authenticator, NoAuth
from services.api.edge.keystone import KeystoneAuth
from services.api.edge.request_decoding import RequestDecodingInterceptor, quiet_header_decoding
from services.api.edge.rpc import Edge
from services.api.groups.operations import GroupOperations
from services.api.groups.servicer import GroupServicer, GroupTypeServicer
from services.api.groups.snapshot_servicer import GroupSnapshotServicer
from services.api.groups.snapshots import GroupSnapshotOperations
from services.api.groups.sources import GroupSources
from services.api.groups.types import GroupTypeOperations
from services.api.info.admin import AdminOperations
from services.api.info.operations import InfoOperations
from services.api.info.servicer import InfoServicer
from services.api.info.versions import VersionServicer
from services.api.messages.operations import MessageOperations
from services.api.messages.servicer import MessageServicer
from services.api.placement.servicer import PlacementServicer
from services.api.qos.operations import QosOperations
from services.api.qos.servicer import QosServicer
from services.api.quotas.quota_sets import QuotaSets
from services.api.quotas.servicer import QuotaServicer
from services.api.snapshots.metadata import SnapshotMetadataOperations
from services.api.snapshots.operations import SnapshotOperations
from services.api.snapshots.servicer import SnapshotServicer
from services.api.transfers.operations import TransferOperations
from services.api.transfers.servicer import TransferServicer
from services.api.types.operations import VolumeTypeOperations
from services.api.types.servicer import TypeServicer
from services.api.unknown_actions import UnknownActionServicer
from services.api.volume_actions.operations import VolumeActions
from services.api.volume_actions.servicer import VolumeActionServicer
from services.api.volumes.create_flow import CreateVolumeFlow
from services.api.volumes.operations import VolumeOperations
from services.api.volumes.servicer import VolumeServicer
from services.api.volumes.updates import VolumeUpdates

__all__ = ["main", "serve"]

SERVICE_NAME = "cindermesh-api"


def _address(settings: Settings, replica: int) -> str:
    return settings.api.address(configured_replica("api", replica, settings.api.replicas))


async def serve(settings: Settings, replica: int = 0) -> None:
    """Runs api replica ``replica`` on ``settings.api.address(replica)`` until SIGTERM or
    SIGINT; healthy while the database answers."""
    address = _address(settings, replica)
    setup_logging(SERVICE_NAME)
    quiet_header_decoding()
    provider = setup_tracing(SERVICE_NAME, settings.data_dir)
    db = open_database(settings)
    await db.create_schema()
    scheduler = SchedulerClient(settings.scheduler.grpc_target)
    managers = VolumeManagerClients()
    authenticator = _authenticator(settings)
    edge = Edge(settings, authenticator)
    volume_operations = VolumeOperations(db, managers)
    create_flow = CreateVolumeFlow(db, settings, scheduler)
    volumes = VolumeServicer(edge, create_flow, volume_operations, VolumeUpdates(db))
    types = TypeServicer(edge, VolumeTypeOperations(db))
    info = InfoServicer(
        edge, InfoOperations(db, settings, scheduler), AdminOperations(db, settings, scheduler)
    )
    messages = MessageServicer(edge, MessageOperations(db))
    quotas = QuotaServicer(edge, QuotaSets(db, settings.quotas))
    qos = QosServicer(edge, QosOperations(db))
    volume_actions = VolumeActionServicer(
        edge,
        VolumeActions(db, settings.quotas, managers, scheduler, volume_operations),
    )
    transfers = TransferServicer(edge, TransferOperations(db, settings.quotas))
    attachments = AttachmentServicer(edge, AttachmentOperations(db, managers))
    placement = PlacementServicer(edge, db)

    snapshot_operations = SnapshotOperations(db, settings.quotas, managers)
    snapshots = SnapshotServicer(edge, snapshot_operations, SnapshotMetadataOperations(db))
    group_types = GroupTypeServicer(edge, GroupTypeOperations(db))
    groups = GroupServicer(
        edge,
        GroupOperations(db, settings, volume_operations),
        GroupSources(db, settings, create_flow),
    )
    group_snapshots = GroupSnapshotServicer(
        edge, GroupSnapshotOperations(db, settings.quotas, managers, snapshot_operations)
    )

    # The public services, each registered explicitly; the gateway transcodes every service
    # of the cindermesh.api.v1 package.
    versions = VersionServicer(edge)
    unknown_actions = UnknownActionServicer(edge)

    def register(server: grpc.aio.Server) -> None:
        version_service_pb2_grpc.add_VersionServiceServicer_to_server(versions, server)
        volume_service_pb2_grpc.add_VolumeServiceServicer_to_server(volumes, server)
        quota_service_pb2_grpc.add_QuotaServiceServicer_to_server(quotas, server)
        type_service_pb2_grpc.add_TypeServiceServicer_to_server(types, server)
        info_service_pb2_grpc.add_InfoServiceServicer_to_server(info, server)
        message_service_pb2_grpc.add_MessageServiceServicer_to_server(messages, server)
        qos_service_pb2_grpc.add_QosServiceServicer_to_server(qos, server)
        snapshot_service_pb2_grpc.add_SnapshotServiceServicer_to_server(snapshots, server)
        transfer_service_pb2_grpc.add_TransferServiceServicer_to_server(transfers, server)
        group_service_pb2_grpc.add_GroupTypeServiceServicer_to_server(group_types, server)
        group_service_pb2_grpc.add_GroupServiceServicer_to_server(groups, server)
        group_service_pb2_grpc.add_GroupSnapshotServiceServicer_to_server(group_snapshots, server)
        action_service_pb2_grpc.add_ActionServiceServicer_to_server(unknown_actions, server)
        volume_action_service_pb2_grpc.add_VolumeActionServiceServicer_to_server(
            volume_actions, server
        )
        attachment_service_pb2_grpc.add_AttachmentServiceServicer_to_server(attachments, server)
        placement_service_pb2_grpc.add_PlacementServiceServicer_to_server(placement, server)

    service_names = [
        version_service_pb2.DESCRIPTOR.services_by_name["VersionService"].full_name,
        volume_service_pb2.DESCRIPTOR.services_by_name["VolumeService"].full_name,
        quota_service_pb2.DESCRIPTOR.services_by_name["QuotaService"].full_name,
        type_service_pb2.DESCRIPTOR.services_by_name["TypeService"].full_name,
        info_service_pb2.DESCRIPTOR.services_by_name["InfoService"].full_name,
        message_service_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name,
        qos_service_pb2.DESCRIPTOR.services_by_name["QosService"].full_name,
        snapshot_service_pb2.DESCRIPTOR.services_by_name["SnapshotService"].full_name,
        transfer_service_pb2.DESCRIPTOR.services_by_name["TransferService"].full_name,
        group_service_pb2.DESCRIPTOR.services_by_name["GroupTypeService"].full_name,
        group_service_pb2.DESCRIPTOR.services_by_name["GroupService"].full_name,
        group_service_pb2.DESCRIPTOR.services_by_name["GroupSnapshotService"].full_name,
        action_service_pb2.DESCRIPTOR.services_by_name["ActionService"].full_name,
        volume_action_service_pb2.DESCRIPTOR.services_by_name["VolumeActionService"].full_name,
        attachment_service_pb2.DESCRIPTOR.services_by_name["AttachmentService"].full_name,
        placement_service_pb2.DESCRIPTOR.services_by_name["PlacementService"].full_name,
    ]
    # The database only: every request needs it. A scheduler is not a dependency (as in
    # Cinder's api): a create is accepted into the database and placed when a scheduler is
    # back (the sweep), and reads never need one; an api that went NOT_SERVING with the
    # schedulers would take the reads of every replica down with them.
    health_status = Health(service_names, [database_dependency(db)])
    server = create_server(
        register,
        health_status,
        interceptors=[RequestDecodingInterceptor()],
        options=[
            ("grpc.max_metadata_size", GRPC_MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", GRPC_MAX_METADATA_BYTES),
        ],
    )

    async def after_rpcs(remaining: float) -> None:
        # The creates' offers to a scheduler, in flight, finish within the grace period.
        await scheduler.close(remaining)
        await managers.close()
        await authenticator.close()

    try:
        await serve_until_signal(
            server,
            settings.listen_address(address),
            health_status,
            Drain(after_rpcs=after_rpcs),
            settings.work.drain_timeout,
        )
    finally:
        await db.close()
        provider.shutdown()


def _authenticator(settings: Settings) -> Authenticator:
    """Cinder's ``auth_strategy``: Keystone tokens, or noauth's ``user:project``."""
    if settings.api.auth_strategy == "keystone":
        return KeystoneAuth(settings.keystone_authtoken)
    return NoAuth(settings.api.admin_users)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.api", description=__doc__)
    parser.add_argument(
        "--replica", type=int, default=0, help="replica to run, 0-based (default: 0)"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(load_settings(), args.replica))


if __name__ == "__main__":
    main()
