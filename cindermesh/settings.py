"""Typed, frozen settings for every cindermesh process.

Sources, later ones winning: built-in defaults, the TOML file named by ``CINDERMESH_CONFIG``,
then environment variables ``CINDERMESH_<SECTION>__<FIELD>`` (e.g.
``CINDERMESH_QUOTAS__VOLUMES=500``, ``CINDERMESH_API__PORT=9000``) and ``CINDERMESH_DATA_DIR``.
Option names follow Cinder's where one exists.

Example file::

    data_dir = "/var/lib/cindermesh"
    database_url = "postgresql+asyncpg://cinder:pw@db/cinder"

    [quotas]
    volumes = 100

    [[backends]]
    name = "file-1"
    driver = "file"
    port = 18780
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ApiSettings",
    "BackendSettings",
    "DriverKind",
    "GatewaySettings",
    "KeystoneAuthtokenSettings",
    "PolicySettings",
    "QuotaSettings",
    "SchedulerSettings",
    "Settings",
    "WorkSettings",
    "configured_replica",
    "load_settings",
    "replica_address",
    "replicas_share_host",
]


class DriverKind(enum.StrEnum):
    """The volume driver a backend runs."""

    FILE = "file"
    RBD = "rbd"


def replicas_share_host(host: str) -> bool:
    """Whether the replicas of a service reached at ``host`` run on one machine: ``host`` is an
    IPv4 address (the default ``127.0.0.1``). A DNS name instead resolves to every replica (a
    Kubernetes headless Service, a compose network alias), each on its own host."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def replica_address(host: str, port: int, replica: int) -> str:
    """``host:port`` of replica ``replica`` (0-based): on ``port + replica`` when the replicas
    share the host (:func:`replicas_share_host`), else every replica on ``port`` of its own."""
    return f"{host}:{port + replica if replicas_share_host(host) else port}"


def configured_replica(service: str, replica: int, replicas: int) -> int:
    """``replica`` when it is one of the ``replicas`` configured for ``service``; a process
    started for another one exits saying which are."""
    if not 0 <= replica < replicas:
        raise SystemExit(
            f"{service} replica {replica} is not configured "
            f"(replicas = {replicas}: 0 to {replicas - 1})"
        )
    return replica


@dataclass(frozen=True)
class QuotaSettings:
    """Default per-project quotas (Cinder's ``quota_*`` options); -1 is unlimited."""

    volumes: int = 10
    gigabytes: int = 1000
    snapshots: int = 10
    backups: int = 10
    backup_gigabytes: int = 1000
    groups: int = 10
    per_volume_gigabytes: int = -1
    #: Cinder's ``no_snapshot_gb_quota``: snapshots count against ``snapshots`` only, not
    #: against ``gigabytes``.
    no_snapshot_gb_quota: bool = False


#: gRPC's default largest received message (4 MiB), which the api's server keeps.
GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: The api server's metadata limit (``grpc.max_metadata_size``, counted as name + value + 32 per
#: header): above every request head Envoy accepts (``MAX_REQUEST_HEADERS_KB_CAP``), twice over
#: (the transcoder adds the path again as ``x-envoy-original-path``), with room for what Envoy
#: adds; so a header Envoy accepts is never refused by gRPC, and Envoy's own 431 is the limit.
GRPC_MAX_METADATA_BYTES = 2 * 256 * 1024 + 64 * 1024
#: The largest ``max_request_body_size`` allowed. A JSON body grows at most 5.5 times when
#: transcoded (``[0,0,...]`` in a ``google.protobuf.Value``: 2 bytes of JSON, 11 of
#: protobuf), so a body up to this size, plus a path and query within the header limit,
#: always stays under ``GRPC_MAX_MESSAGE_BYTES`` on its way to the api.
MAX_REQUEST_BODY_SIZE_CAP = 512 * 1024
#: The largest ``max_request_headers_kb`` allowed (the path and query become fields too).
MAX_REQUEST_HEADERS_KB_CAP = 256


@dataclass(frozen=True)
class GatewaySettings:
    """Envoy, the REST edge, and the sizes of request it accepts."""

    host: str = "127.0.0.1"
    #: Cinder's port.
    port: int = 8776
    admin_port: int = 19901
    #: Envoy worker threads.
    concurrency: int = 2
    #: Largest request body, in bytes (Cinder's ``[oslo_middleware] max_request_body_size``,
    #: formerly ``osapi_max_request_body_size``, same default). A larger body answers 413
    #: ``overLimit`` "Request is too large.", with or without a Content-Length. At most
    #: ``MAX_REQUEST_BODY_SIZE_CAP``.
    max_request_body_size: int = 114688
    #: Largest request line plus headers, in KiB (Envoy's ``max_request_headers_kb``; Cinder's
    #: eventlet server allows 16 KiB per header line). More answers 431. At most
    #: ``MAX_REQUEST_HEADERS_KB_CAP``.
    max_request_headers_kb: int = 32
    #: Most request headers (Envoy's ``max_headers_count``); more answers 431.
    max_request_headers_count: int = 100
    #: Largest response body the gateway builds from one api answer, in bytes (a full page of
    #: 1000 volume details with metadata stays far below it).
    max_response_body_size: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.max_request_body_size <= MAX_REQUEST_BODY_SIZE_CAP:
            raise ValueError(
                f"gateway.max_request_body_size must be 1..{MAX_REQUEST_BODY_SIZE_CAP} bytes "
                f"(gRPC's {GRPC_MAX_MESSAGE_BYTES}-byte message limit)"
            )
        if not 0 < self.max_request_headers_kb <= MAX_REQUEST_HEADERS_KB_CAP:
            raise ValueError(
                f"gateway.max_request_headers_kb must be 1..{MAX_REQUEST_HEADERS_KB_CAP}"
            )
        if self.max_request_headers_count < 1 or self.max_response_body_size < 1:
            raise ValueError("gateway header count and response size limits must be positive")


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    #: The first replica's port; replica ``i`` (0-based) listens on ``port + i`` when ``host``
    #: is an IP address (one machine), on ``port`` of its own host when ``host`` is a DNS name.
    port: int = 18776
    #: Api processes (each its own port), all behind the gateway, which balances them,
    #: health-checks them and retries idempotent calls on another one.
    replicas: int = 1
    #: Users who are admins (Cinder's noauth makes everyone one; we do not).
    admin_users: tuple[str, ...] = ("admin",)
    #: The zone given to volumes created without one (Cinder's ``default_availability_zone``).
    default_availability_zone: str = "nova"
    #: Cinder's ``auth_strategy``: ``noauth`` (the one-machine default: ``X-Auth-Token:
    #: user:project``, anyone can forge it) or ``keystone`` (tokens validated against the
    #: Keystone of ``[keystone_authtoken]``).
    auth_strategy: str = "noauth"

    def __post_init__(self) -> None:
        if self.auth_strategy not in ("noauth", "keystone"):
            raise ValueError(
                f"api.auth_strategy must be 'noauth' or 'keystone', not {self.auth_strategy!r}"
            )
        if self.replicas < 1:
            raise ValueError("[api] replicas must be at least 1")

    def address(self, replica: int) -> str:
        """``host:port`` of replica ``replica`` (0-based): :func:`replica_address`."""
        return replica_address(self.host, self.port, replica)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The distinct addresses of the replicas (one DNS name stands for all of them)."""
        return tuple(dict.fromkeys(self.address(i) for i in range(self.replicas)))


@dataclass(frozen=True)
class KeystoneAuthtokenSettings:
    """How the api validates Keystone tokens (``auth_strategy = "keystone"``), with
    keystonemiddleware's ``[keystone_authtoken]`` option names. The service user (``username``
    ...) validates callers' tokens with its own token, obtained by password."""

    #: The Identity API given to clients in ``WWW-Authenticate`` (empty: ``auth_url``).
    www_authenticate_uri: str = ""
    #: Keystone's Identity API, e.g. ``http://127.0.0.1:5000/v3`` (``/v3`` optional).
    auth_url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    #: Seconds a validated (or refused) token is remembered; never past the token's expiry.
    token_cache_time: int = 300
    #: Seconds for one request to Keystone (keystonemiddleware's ``http_connect_timeout``);
    #: Keystone slower or unreachable answers 503.
    http_connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.token_cache_time < 0 or self.http_connect_timeout <= 0:
            raise ValueError(
                "keystone_authtoken.token_cache_time must be >= 0 and "
                "keystone_authtoken.http_connect_timeout > 0"
            )

    def check_complete(self) -> None:
        """What ``auth_strategy = "keystone"`` needs: a Keystone and a service user."""
        missing = [
            name
            for name in ("auth_url", "username", "password", "project_name")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(
                "api.auth_strategy = 'keystone' needs keystone_authtoken." + ", ".join(missing)
            )
        if not self.auth_url.startswith(("http://", "https://")):
            raise ValueError("keystone_authtoken.auth_url must be an http(s) URL")


@dataclass(frozen=True)
class SchedulerSettings:
    host: str = "127.0.0.1"
    #: The first replica's port; replica ``i`` (0-based) listens on ``port + i`` when ``host``
    #: is an IP address (one machine), on ``port`` of its own host when ``host`` is a DNS name.
    port: int = 18777
    #: Scheduler processes (each its own port); every one knows every backend, and the
    #: database's claims keep them from placing two volumes on the same free space.
    replicas: int = 1
    #: Attempts per volume, the first one included (Cinder's ``scheduler_max_attempts``).
    scheduler_max_attempts: int = 3
    #: Cinder's ``service_down_time``: seconds after its last capability report a backend is
    #: down (its pools are no longer candidates), measured on the scheduler's own clock.
    service_down_time: float = 60.0
    #: Seconds between two reads of the services table for backends to subscribe to.
    discovery_interval: float = 1.0
    #: Cinder's ``scheduler_default_filters``, by name (``services.scheduler.registry``).
    scheduler_default_filters: tuple[str, ...] = (
        "AvailabilityZoneFilter",
        "CapacityFilter",
        "CapabilitiesFilter",
    )
    #: Cinder's ``scheduler_default_weighers``, by name.
    scheduler_default_weighers: tuple[str, ...] = ("CapacityWeigher",)
    #: Cinder's ``scheduler_weight_handler``, by name: ``OrderedHostWeightHandler`` (the top
    #: pool) or ``StochasticHostWeightHandler`` (a pool drawn with probability by weight).
    scheduler_weight_handler: str = "OrderedHostWeightHandler"
    #: Cinder's ``capacity_weight_multiplier`` (negative: stack instead of spread).
    capacity_weight_multiplier: float = 1.0
    #: Cinder's ``allocated_capacity_weight_multiplier`` (negative: spread).
    allocated_capacity_weight_multiplier: float = -1.0
    #: Cinder's ``volume_number_multiplier`` (negative: spread).
    volume_number_multiplier: float = -1.0

    def address(self, replica: int) -> str:
        """``host:port`` of replica ``replica`` (0-based): :func:`replica_address`."""
        return replica_address(self.host, self.port, replica)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The distinct addresses of the replicas (one DNS name stands for all of them)."""
        return tuple(dict.fromkeys(self.address(i) for i in range(self.replicas)))

    @property
    def grpc_target(self) -> str:
        """A gRPC target naming every replica, for a ``round_robin`` channel that skips the
        replicas that are down: ``ipv4:a:p1,a:p2`` for an IPv4 address, else the DNS name
        (whose addresses are the replicas) and the first port."""
        if not replicas_share_host(self.host):
            return self.address(0)
        return "ipv4:" + ",".join(self.addresses)


@dataclass(frozen=True)
class WorkSettings:
    """How accepted work is handed over and taken over (``cindermesh.db.work``)."""

    #: Seconds a volume manager's claim on a volume lasts; renewed while it works on it. A
    #: manager that dies loses its volumes to a reschedule this long after its last renewal.
    manager_lease: float = 6.0
    #: Seconds between two looks at the database for work nobody holds.
    sweep_interval: float = 1.0
    #: Seconds an accepted volume may wait for its scheduler before any scheduler takes it.
    unplaced_grace: float = 2.0
    #: Seconds a scheduler keeps handing a placed volume to an unreachable manager (with
    #: backoff) before it places the volume again, as another attempt.
    handoff_timeout: float = 30.0
    #: Seconds a volume may wait for any backend to report before it ends in ``error``.
    placement_timeout: float = 120.0
    #: Seconds before a quota reservation expires (Cinder's ``reservation_expire``).
    reservation_expire: int = 86400
    #: Seconds during which a create retried with the same request id (and project) answers
    #: the volume the first one made.
    idempotency_window: int = 3600
    #: Seconds a service stopping on SIGTERM gives the RPCs in flight, and the work they
    #: started, to finish (health NOT_SERVING first, no new RPCs); what is still running then
    #: is left as recovery on another replica, or on the restart, takes it over.
    drain_timeout: float = 30.0


@dataclass(frozen=True)
class PolicySettings:
    """``[policy]``: Cinder's policy rules overridden, rule name -> oslo.policy check string,
    as in Cinder's ``policy.yaml`` (e.g. ``"volume:delete" = "rule:admin_api"``). The api
    refuses to start with a rule its table lacks or a check string it cannot parse."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_mapping(cls, values: Any) -> PolicySettings:
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise ValueError("[policy] maps rule names to check strings")
        return cls(tuple(values.items()))

    def overrides(self) -> dict[str, str]:
        return dict(self.rules)


@dataclass(frozen=True)
class BackendSettings:
    """One volume manager process and the backend it drives."""

    #: Backend name; the host is ``<host_name>@<name>``, the pool follows ``#``.
    name: str = "file-1"
    driver: DriverKind = DriverKind.FILE
    host: str = "127.0.0.1"
    port: int = 18780
    availability_zone: str = "nova"
    #: Capacity the file driver reports, in GiB.
    total_capacity_gb: int = 1000
    #: What the file driver reports: ``thin`` (sparse files, over-subscribed up to
    #: ``max_over_subscription_ratio``) or ``thick`` (every GiB of a volume counts as used).
    provisioning: str = "thin"
    #: Cinder's ``reserved_percentage`` and ``max_over_subscription_ratio``.
    reserved_percentage: int = 0
    max_over_subscription_ratio: float = 20.0
    #: Seconds between capability reports.
    report_interval: float = 10.0
    #: RBD: ceph.conf, pool and client name (Cinder's option names).
    rbd_ceph_conf: str = "/etc/ceph/ceph.conf"
    rbd_pool: str = "volumes"
    rbd_user: str = "admin"
    #: RBD: the client's keyring; empty: as ceph.conf says.
    rbd_keyring: str = ""
    rbd_cluster_name: str = "ceph"
    #: RBD: the libvirt secret of the client key, passed on in the connection info.
    rbd_secret_uuid: str = ""
    #: RBD: seconds for connecting and for each cluster operation (Cinder's default -1 would
    #: wait for ever; a bounded wait lets a create fail and be rescheduled).
    rados_connect_timeout: float = 5.0
    #: RBD: ancestors a clone of a volume may have before it is flattened; 0: full copies.
    rbd_max_clone_depth: int = 5
    #: RBD: volumes created from a snapshot are flattened at once.
    rbd_flatten_volume_from_snapshot: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    #: Where the SQLite database, volume files, traces and logs live.
    data_dir: Path = Path("./data")
    #: SQLAlchemy async URL; empty means SQLite in ``data_dir``.
    database_url: str = ""
    #: The host name of this node, as in Cinder's ``host`` option.
    host_name: str = "cindermesh"
    #: The address every gRPC server of this process listens on, with its service's port
    #: (``0.0.0.0`` in a container, where the service is reached by a DNS name that is not
    #: an address of its own); empty: the host it is reached at (``[api] host``,
    #: ``[scheduler] host``, a backend's ``host``), as on one machine.
    listen_host: str = ""
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    backends: tuple[BackendSettings, ...] = (BackendSettings(),)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    work: WorkSettings = field(default_factory=WorkSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    keystone_authtoken: KeystoneAuthtokenSettings = field(default_factory=KeystoneAuthtokenSettings)

    def __post_init__(self) -> None:
        if self.api.auth_strategy == "keystone":
            self.keystone_authtoken.check_complete()
        if self.scheduler.replicas < 1:
            raise ValueError("[scheduler] replicas must be at least 1")
        if self.work.drain_timeout < 0:
            raise ValueError("[work] drain_timeout must not be negative")
        for backend in self.backends:
            if backend.provisioning not in ("thin", "thick"):
                raise ValueError(
                    f"backend {backend.name}: provisioning must be thin or thick, "
                    f"not {backend.provisioning!r}"
                )

    def listen_address(self, address: str) -> str:
        """Where a server reached at ``address`` (``host:port``) listens: ``listen_host`` with
        the same port, or ``address`` itself when ``listen_host`` is empty."""
        if not self.listen_host:
            return address
        port = address.rpartition(":")[2]
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'cindermesh.db'}"

    def backend(self, name: str) -> BackendSettings:
        for backend in self.backends:
            if backend.name == name:
                return backend
        raise KeyError(f"no backend named {name!r} in the configuration")


def _coerce(kind: Any, value: Any) -> Any:
    """Turns a TOML or environment value into the field's declared type."""
    if kind in ("int", int):
        return int(value)
    if kind in ("float", float):
        return float(value)
    if kind in ("bool", bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if kind in ("Path", Path):
        return Path(value)
    if kind in ("DriverKind", DriverKind):
        return DriverKind(value)
    if kind == "tuple[str, ...]":
        return tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    return value


def _build(cls: type[Any], values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown settings for {cls.__name__}: {sorted(unknown)}")
    return cls(**{name: _coerce(known[name].type, v) for name, v in values.items()})


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if key.startswith("CINDERMESH_") and "__" in key:
            section, _, name = key.removeprefix("CINDERMESH_").lower().partition("__")
            sections.setdefault(section, {})[name] = value
    return sections


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    if path := env.get("CINDERMESH_CONFIG"):
        raw = tomllib.loads(Path(path).read_text())
    for section, values in _env_overrides(env).items():
        if section == "backends":
            raise ValueError("backends are set in the config file, not the environment")
        raw.setdefault(section, {}).update(values)
    for key in ("data_dir", "database_url", "host_name", "listen_host"):
        if (value := env.get(f"CINDERMESH_{key.upper()}")) is not None:
            raw[key] = value
    sections = {
        "gateway": GatewaySettings,
        "api": ApiSettings,
        "scheduler": SchedulerSettings,
        "quotas": QuotaSettings,
        "work": WorkSettings,
        "keystone_authtoken": KeystoneAuthtokenSettings,
    }
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        if name in sections:
            kwargs[name] = _build(sections[name], value)
        elif name == "policy":
            kwargs[name] = PolicySettings.from_mapping(value)
        elif name == "backends":
            kwargs[name] = tuple(_build(BackendSettings, b) for b in value)
        elif name in ("data_dir", "database_url", "host_name", "listen_host"):
            kwargs[name] = _coerce(Path if name == "data_dir" else str, value)
        else:
            raise ValueError(f"unknown setting {name!r}")
    settings = Settings(**kwargs)
    return dataclasses.replace(settings, data_dir=settings.data_dir.resolve())
