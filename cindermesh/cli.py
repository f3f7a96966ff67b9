"""The ``cindermesh`` command: the whole product (``up``) or any one piece of it.

    cindermesh up                    everything on loopback, in the foreground
    cindermesh api | scheduler       one gRPC service (--replica N: replica N)
    cindermesh volume --backend NAME one volume manager
    cindermesh gateway               Envoy alone (config rendered into <data_dir>/envoy.yaml)
    cindermesh trace-sink [--port N] a local OTLP/gRPC receiver writing <data_dir>/traces/
    cindermesh trace REQUEST_ID      one request's span tree
    cindermesh db upgrade            bring the database schema to the head revision
    cindermesh db current            the database's revision and the head
    cindermesh db revision -m TEXT   write the migration from the head to the models (a clone)
    cindermesh status [--json]       every service and pool, up or down (exit 1 if any is down)
    cindermesh health-check ADDRESS  one gRPC health Check (exit 0 only on SERVING)

Settings come from ``CINDERMESH_CONFIG`` (TOML) and ``CINDERMESH_*`` environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from cindermesh.settings import Settings, load_settings

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cindermesh", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="start everything on loopback in the foreground")
    api = commands.add_parser("api", help="run the api service (VolumeService)")
    api.add_argument("--replica", type=int, default=0, help="replica to run, 0-based (default: 0)")
    scheduler = commands.add_parser("scheduler", help="run the scheduler service")
    scheduler.add_argument(
        "--replica", type=int, default=0, help="replica to run, 0-based (default: 0)"
    )
    volume = commands.add_parser("volume", help="run the volume manager of one backend")
    volume.add_argument("--backend", required=True, help="backend name from the config")
    gateway = commands.add_parser("gateway", help="run Envoy, the REST gateway")
    gateway.add_argument(
        "--otlp-endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        help="OTLP/gRPC collector for Envoy's spans (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    gateway.add_argument("--log-level", default="warning", help="Envoy's log level")
    sink = commands.add_parser("trace-sink", help="receive OTLP spans into <data_dir>/traces/")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=4317)
    trace = commands.add_parser("trace", help="print one request's span tree")
    trace.add_argument("request_id", metavar="REQUEST_ID")
    _add_db_commands(commands)
    status = commands.add_parser("status", help="every service and pool, up or down")
    status.add_argument("--json", action="store_true", help="one JSON document instead")
    check = commands.add_parser(
        "health-check", help="ask one gRPC server's grpc.health.v1 Check (for probes)"
    )
    check.add_argument("address", metavar="ADDRESS", help="host:port")
    check.add_argument("--timeout", type=float, default=3.0, help="seconds (default: 3)")
    return parser


def _add_db_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="the database schema, made and changed by migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    db_commands.add_parser("upgrade", help="bring the schema to the head revision")
    db_commands.add_parser("current", help="print the database's revision and the head")
    revision = db_commands.add_parser(
        "revision", help="write the migration from the head to the models (in a clone)"
    )
    revision.add_argument("-m", "--message", required=True, help="what the revision changes")


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from cindermesh.db.migrations.connection import MigrationError

    try:
        return _db_command(settings, args)
    except MigrationError as error:
        print(f"cindermesh: {error}", file=sys.stderr)
        return 1


def _db_command(settings: Settings, args: argparse.Namespace) -> int:
    from cindermesh.db.migrations.upgrade import head_revision

    command: str = args.db_command
    if command == "upgrade":
        from cindermesh.launcher import create_schema

        print(asyncio.run(create_schema(settings)).describe())
        return 0
    if command == "current":
        from cindermesh.db.migrations.upgrade import current_revision

        current = asyncio.run(current_revision(settings.db_url))
        print(f"{current or 'none (no schema)'} (head: {head_revision()})")
        return 0
    if command == "revision":
        from cindermesh.db.migrations.revision import new_revision

        print(f"wrote {new_revision(args.message)}")
        return 0
    raise AssertionError(f"unhandled db command {command}")


def _run_service(name: str, service: Coroutine[Any, Any, None]) -> int:
    from cindermesh.telemetry.logs import setup_logging

    setup_logging(name)
    asyncio.run(service)
    return 0


def _api(settings: Settings, replica: int) -> int:
    from services.api.main import serve

    return _run_service("api", serve(settings, replica))


def _scheduler(settings: Settings, replica: int) -> int:
    from services.scheduler.main import serve

    return _run_service("scheduler", serve(settings, replica))


def _volume(settings: Settings, backend_name: str) -> int:
    settings.backend(backend_name)  # fails early on an unknown name
    from services.volume.main import serve

    return _run_service("volume", serve(settings, backend_name))


def _gateway(settings: Settings, otlp_endpoint: str, log_level: str) -> int:
    from cindermesh.gateway_config import write_envoy_config
    from cindermesh.launcher import envoy_command

    config = write_envoy_config(settings, otlp_endpoint or None)
    argv = envoy_command(config, settings, log_level)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # Envoy takes over this process and its signals


def _trace(settings: Settings, request_id: str) -> int:
    from cindermesh.telemetry.trace_tree import format_trace_tree
    from cindermesh.telemetry.tracing import traces_dir

    directory = traces_dir(settings.data_dir)
    text = format_trace_tree(request_id, directory)
    if text is None:
        print(f"no spans for {request_id} in {directory}", file=sys.stderr)
        return 1
    print(text)
    return 0


def _status(settings: Settings, as_json: bool) -> int:
    from cindermesh.status import format_status, gather_status, status_json

    status = asyncio.run(gather_status(settings))
    print(status_json(status) if as_json else format_status(status))
    return 0 if status.ok else 1


def _health_check(address: str, timeout: float) -> int:
    from cindermesh.status import SERVING, probe_health

    answer = asyncio.run(probe_health(address, timeout))
    print(f"{address}: {answer}")
    return 0 if answer == SERVING else 1


def _up(settings: Settings) -> int:
    """Runs the launcher, with gRPC's fork handlers off (set before gRPC is imported).

    The launcher forks its children (a ``preexec_fn`` sets their death signal) while its own
    gRPC threads run; gRPC's handlers would then log on every fork and can break its pollers,
    and the children exec at once so they need none.
    """
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    from cindermesh.launcher import Launcher

    return asyncio.run(Launcher(settings).run())


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command: str = args.command
    if command == "up":
        return _up(settings)
    if command == "api":
        return _api(settings, args.replica)
    if command == "scheduler":
        return _scheduler(settings, args.replica)
    if command == "volume":
        return _volume(settings, args.backend)
    if command == "gateway":
        return _gateway(settings, args.otlp_endpoint, args.log_level)
    if command == "trace-sink":
        from cindermesh.telemetry.sink import serve_sink
        from cindermesh.telemetry.tracing import traces_dir

        asyncio.run(serve_sink(traces_dir(settings.data_dir), args.host, args.port))
        return 0
    if command == "trace":
        return _trace(settings, args.request_id)
    if command == "db":
        return _db(settings, args)
    if command == "status":
        return _status(settings, args.json)
    if command == "health-check":
        return _health_check(args.address, args.timeout)
    raise AssertionError(f"unhandled command {command}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except (OSError, ValueError) as error:
        print(f"cindermesh: bad configuration: {error}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
