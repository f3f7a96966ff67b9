"""The RBD driver: one thin RBD image per volume in a Ceph pool (Cinder's ``RBDDriver``).

Behaviour follows Cinder's ``cinder/volume/drivers/rbd.py``:

* create: ``volume-<id>``, 4 MiB objects, features layering, exclusive-lock, object-map,
  fast-diff and deep-flatten as far as the cluster's ``rbd_default_features`` and the library
  allow (:func:`select_features`);
* delete: an image already gone is success; an image whose snapshots have copy-on-write clones
  (a ``.clone_snap``) is renamed ``volume-<id>.deleted`` and removed with its last clone; an
  image that still has snapshots after its children were flattened goes to the trash; an image
  in use (watchers) stays and the delete fails with VolumeIsBusy;
* clones of volumes are copy-on-write clones of a temporary ``<dest>.clone_snap`` snapshot,
  flattened when the source already has ``rbd_max_clone_depth`` ancestors (0: full copies);
  volumes from snapshots are clones, flattened if ``rbd_flatten_volume_from_snapshot``;
* capacity as Cinder reports it with ``report_dynamic_total_capacity``: free is the pool's
  ``max_avail`` (or what its byte quota leaves), total is free plus what the pool stores; the
  provisioned capacity is the sum of the sizes of every image in the pool;
* ``initialize_connection`` gives Cinder's ``rbd`` connection data with the monitors of the
  cluster's monmap.

Ours: one librados connection per backend, opened in ``do_setup`` and reused by every call; all
blocking librados/librbd calls run on one executor of this backend, each bounded by the
librados op timeouts (``rados_connect_timeout``) and by an overall deadline. If the cluster
cannot be reached at start, ``do_setup`` returns anyway: the backend reports
``backend_state = down`` with no capacity, calls fail with DriverNotInitialized (creates are
rescheduled), and a background task connects again until the cluster answers. Images a failed
create could not remove (the cluster was unreachable) are removed once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from cindermesh.settings import BackendSettings
from cindermesh.telemetry.tracing import tracer
from services.volume.drivers.base import (
    BACKEND_DOWN,
    BACKEND_UP,
    CapacityStats,
    ClonePolicy,
    ConnectionInfo,
    DriverInfo,
    RbdConnectionData,
    SnapshotIsBusy,
    SnapshotRef,
    SourceVolumeRef,
    VolumeIsBusy,
    volume_name,
)
from services.volume.errors import DriverError, DriverNotInitialized

__all__ = [
    "FEATURE_BITS",
    "WANTED_FEATURES",
    "PoolStats",
    "RbdDriver",
    "feature_names",
    "parse_mon_addrs",
    "pool_capacity",
    "select_features",
]

log = logging.getLogger(__name__)

GIB = 1024**3
#: Cinder's ``rbd_store_chunk_size`` (4 MiB objects).
ORDER = 22
VERSION = "1.3.0"
_INFO = DriverInfo(
    kind="rbd", vendor_name="Open Source", driver_version=VERSION, storage_protocol="ceph"
)
_PREFIX = "volume-"
_DELETED = ".deleted"
_CLONE_SNAP = ".clone_snap"

# librbd's feature bits (rbd.RBD_FEATURE_*), for logic that runs without the bindings.
LAYERING = 1
STRIPINGV2 = 2
EXCLUSIVE_LOCK = 4
OBJECT_MAP = 8
FAST_DIFF = 16
DEEP_FLATTEN = 32
JOURNALING = 64
FEATURE_BITS: dict[str, int] = {
    "layering": LAYERING,
    "striping": STRIPINGV2,
    "exclusive-lock": EXCLUSIVE_LOCK,
    "object-map": OBJECT_MAP,
    "fast-diff": FAST_DIFF,
    "deep-flatten": DEEP_FLATTEN,
    "journaling": JOURNALING,
}
WANTED_FEATURES = LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | DEEP_FLATTEN

#: Removing an image in use is tried this many times, this many seconds apart (Cinder:
#: ``rados_connection_retries`` x ``rados_connection_interval``, 3 x 5 s).
REMOVE_TRIES = 3
REMOVE_INTERVAL = 0.5
#: Seconds between two connection attempts while the cluster is unreachable.
RECONNECT_MIN = 0.5
RECONNECT_MAX = 5.0
#: Seconds between two removals of images left by failed creates.
JANITOR_INTERVAL = 2.0

T = TypeVar("T")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``${VAR}`` and ``${VAR:-default}`` in an RBD setting, from the environment (so that a
    config can take what ``deploy/ceph/up`` prints: ``CEPH_CONF``, ``CEPH_KEYRING`` ...)."""
    env = os.environ if environ is None else environ

    def one(match: re.Match[str]) -> str:
        return env.get(match.group(1)) or (match.group(2) or "")

    return _VARIABLE.sub(one, value)


def _expanded(backend: BackendSettings) -> BackendSettings:
    return dataclasses.replace(
        backend,
        rbd_ceph_conf=expand(backend.rbd_ceph_conf),
        rbd_keyring=expand(backend.rbd_keyring),
        rbd_user=expand(backend.rbd_user),
        rbd_pool=expand(backend.rbd_pool),
    )


def select_features(supported: int, cluster_default: int | None) -> int:
    """The features of a new image: layering, exclusive-lock, object-map, fast-diff and
    deep-flatten, less what the cluster's ``rbd_default_features`` leaves out (unset or 0:
    layering only, as Cinder) and what the library does not support; object-map needs
    exclusive-lock and fast-diff needs object-map."""
    base = cluster_default if cluster_default else LAYERING
    features = base & WANTED_FEATURES & supported
    if not features & EXCLUSIVE_LOCK:
        features &= ~OBJECT_MAP
    if not features & OBJECT_MAP:
        features &= ~FAST_DIFF
    return features


def feature_names(features: int) -> list[str]:
    return [name for name, bit in FEATURE_BITS.items() if features & bit]


def _split_host_port(address: str) -> tuple[str, str]:
    """``127.0.0.1:3300/0`` or ``[::1]:3300/0`` -> (host, port)."""
    host_port = address.rsplit("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    return host.strip("[]"), port


def parse_mon_addrs(monmap: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The monitors' hosts and ports of ``ceph mon dump --format=json`` (Cinder's
    ``_get_mon_addrs``): each monitor's ``addr``, else its first public address."""
    hosts: list[str] = []
    ports: list[str] = []
    for mon in monmap.get("mons", []):
        address = mon.get("addr") or ""
        if not address or address.startswith("-"):
            addrvec = mon.get("public_addrs", {}).get("addrvec", [])
            address = addrvec[0]["addr"] if addrvec else ""
        if not address:
            continue
        host, port = _split_host_port(address)
        hosts.append(host)
        ports.append(port)
    return hosts, ports


@dataclass(frozen=True)
class PoolStats:
    """The numbers of ``ceph df`` and ``osd pool get-quota`` the capacity comes from."""

    #: The pool's ``stored`` (before Nautilus ``bytes_used``).
    stored_bytes: int
    max_avail_bytes: int
    #: The cluster's raw size.
    cluster_total_bytes: int
    quota_max_bytes: int


def pool_capacity(stats: PoolStats, dynamic_total: bool = True) -> tuple[float, float]:
    """(free, total) in GiB, two decimals, as Cinder's ``_get_pool_stats``: with a byte quota
    total is the quota and free what it leaves (at most ``max_avail``); without one free is
    ``max_avail`` and total the cluster's size; with ``dynamic_total`` (Cinder's default)
    total is free plus stored."""
    if stats.quota_max_bytes:
        total = float(stats.quota_max_bytes)
        free = float(max(min(stats.quota_max_bytes - stats.stored_bytes, stats.max_avail_bytes), 0))
    else:
        total = float(stats.cluster_total_bytes)
        free = float(stats.max_avail_bytes)
    if dynamic_total:
        total = free + stats.stored_bytes
    return round(free / GIB, 2), round(total / GIB, 2)


def parse_pool_stats(df: Mapping[str, Any], quota: Mapping[str, Any], pool: str) -> PoolStats:
    for entry in df.get("pools", []):
        if entry.get("name") == pool:
            stats = entry["stats"]
            return PoolStats(
                stored_bytes=int(stats.get("stored", stats.get("bytes_used", 0))),
                max_avail_bytes=int(stats["max_avail"]),
                cluster_total_bytes=int(df["stats"]["total_bytes"]),
                quota_max_bytes=int(quota.get("quota_max_bytes") or 0),
            )
    raise DriverError(f"pool {pool!r} is not in the cluster's df")


def _ceil_gib(size_bytes: int) -> int:
    return -(-size_bytes // GIB)


def _volume_id_of(image: str) -> str | None:
    if image.startswith(_PREFIX) and not image.endswith(_DELETED) and "." not in image:
        return image.removeprefix(_PREFIX)
    return None


@dataclass
class _Session:
    """One connection to the cluster and the pool's I/O context."""

    client: Any
    ioctx: Any
    fsid: str
    features: int


class RbdDriver:
    def __init__(self, backend: BackendSettings) -> None:
        backend = _expanded(backend)
        self._backend = backend
        self._policy = ClonePolicy.from_settings(backend)
        self._timeout = backend.rados_connect_timeout
        # Each call makes a few librados requests, each bounded by the op timeouts.
        self._deadline = max(4 * self._timeout, 10.0) if self._timeout > 0 else None
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"rbd-{backend.name}")
        self._rados: ModuleType | None = None
        self._rbd: ModuleType | None = None
        self._session: _Session | None = None
        self._up = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None
        self._janitor: asyncio.Task[None] | None = None
        #: Images whose removal failed because the cluster did not answer.
        self._leftovers: set[str] = set()
        #: Every image of the pool and its size in bytes (for the provisioned capacity).
        self._sizes: dict[str, int] = {}
        self._sizes_at = -math.inf
        self._closed = False

    # -- the Protocol's properties -------------------------------------------------------

    @property
    def info(self) -> DriverInfo:
        return _INFO

    @property
    def clone_policy(self) -> ClonePolicy:
        return self._policy

    @property
    def backend_state(self) -> str:
        return BACKEND_UP if self._session is not None else BACKEND_DOWN

    @property
    def location_info(self) -> str:
        """Cinder's ``location_info``: ``cluster:conf:fsid:user:pool``."""
        b = self._backend
        fsid = self._session.fsid if self._session is not None else ""
        return f"{b.rbd_cluster_name}:{b.rbd_ceph_conf}:{fsid}:{b.rbd_user}:{b.rbd_pool}"

    # -- the connection ------------------------------------------------------------------

    def _modules(self) -> tuple[Any, Any]:
        if self._rados is None or self._rbd is None:
            try:
                self._rados = importlib.import_module("rados")
                self._rbd = importlib.import_module("rbd")
            except ImportError as error:
                raise DriverError(
                    "the rbd driver needs the rados and rbd Python bindings "
                    "(Debian python3-rados, python3-rbd; deploy/ceph/bindings)"
                ) from error
        return self._rados, self._rbd

    def _connect_blocking(self) -> _Session:
        rados, rbd = self._modules()
        b = self._backend
        conf: dict[str, str] = {}
        if b.rbd_keyring:
            conf["keyring"] = b.rbd_keyring
        client = rados.Rados(
            rados_id=b.rbd_user, clustername=b.rbd_cluster_name, conffile=b.rbd_ceph_conf, conf=conf
        )
        try:
            if self._timeout > 0:
                seconds = str(max(1, math.ceil(self._timeout)))
                for option in (
                    "rados_osd_op_timeout",
                    "rados_mon_op_timeout",
                    "client_mount_timeout",
                ):
                    client.conf_set(option, seconds)
            client.connect(timeout=max(1, math.ceil(self._timeout)) if self._timeout > 0 else 0)
            ioctx = client.open_ioctx(b.rbd_pool)
            default = client.conf_get("rbd_default_features")
            features = select_features(
                int(getattr(rbd, "RBD_FEATURES_ALL", WANTED_FEATURES)),
                int(default) if default and str(default).isdigit() else _named(default),
            )
            return _Session(client=client, ioctx=ioctx, fsid=client.get_fsid(), features=features)
        except BaseException:
            client.shutdown()
            raise

    async def _connect_once(self) -> bool:
        b = self._backend
        attributes: dict[str, AttributeValue] = {
            "rbd.cluster": b.rbd_cluster_name,
            "rbd.conf": b.rbd_ceph_conf,
            "rbd.user": b.rbd_user,
            "rbd.pool": b.rbd_pool,
            "rbd.timeout": self._timeout,
        }
        with tracer().start_as_current_span(
            "volume.driver.rbd.connect", attributes=attributes
        ) as span:
            log.debug(
                "connecting to %s@%s (conf=%s, timeout=%s).",
                b.rbd_user,
                b.rbd_cluster_name,
                b.rbd_ceph_conf,
                self._timeout,
            )
            try:
                session = await self._blocking(self._connect_blocking, deadline=self._deadline)
            except Exception as error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                span.set_attribute("rbd.connected", False)
                raise
            span.set_attributes(
                {
                    "rbd.connected": True,
                    "rbd.fsid": session.fsid,
                    "rbd.features": feature_names(session.features),
                }
            )
        if self._closed:
            await self._blocking(_shutdown, session)
            return False
        self._session = session
        self._up.set()
        log.info(
            "connected to the Ceph cluster %s (pool %s, features %s)",
            session.fsid,
            b.rbd_pool,
            ",".join(feature_names(session.features)),
        )
        return True

    async def _keep_connecting(self) -> None:
        delay = RECONNECT_MIN
        quiet = False
        while self._session is None and not self._closed:
            try:
                if await self._connect_once():
                    return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                level = logging.DEBUG if quiet else logging.WARNING
                log.log(
                    level,
                    "Ceph cluster unreachable (%s); backend %s is down, retrying",
                    error,
                    self._backend.name,
                )
                quiet = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _reconnect(self) -> None:
        """Starts connecting in the background unless already connecting."""
        if self._closed or (self._connecting is not None and not self._connecting.done()):
            return
        self._connecting = asyncio.create_task(self._keep_connecting(), name="rbd-connect")

    def _drop(self, session: _Session) -> None:
        """The connection broke: forget it and connect again."""
        if self._session is session:
            self._session = None
            self._up.clear()
            self._executor.submit(_shutdown, session)
            self._reconnect()

    async def do_setup(self) -> None:
        self._modules()  # a missing binding is a configuration error: fail at start
        try:
            await self._connect_once()
        except Exception as error:
            log.warning(
                "Ceph cluster unreachable at start (%s); backend %s reports down and keeps trying",
                error,
                self._backend.name,
            )
            self._reconnect()
        self._janitor = asyncio.create_task(self._remove_leftovers(), name="rbd-janitor")

    async def wait_up(self) -> None:
        await self._up.wait()

    async def close(self) -> None:
        self._closed = True
        for task in (self._connecting, self._janitor):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        session, self._session = self._session, None
        self._up.clear()
        if session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(self._executor, _shutdown, session),
                    timeout=5.0,
                )
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- running blocking calls ----------------------------------------------------------

    async def _blocking(
        self, function: Callable[..., T], *args: Any, deadline: float | None = None
    ) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(function, *args))
        try:
            return await asyncio.wait_for(future, deadline)
        except TimeoutError as error:
            raise DriverError(
                f"rbd: {getattr(function, '__name__', 'call')} did not finish within {deadline} s"
            ) from error

    def _current(self) -> _Session:
        if self._session is None:
            self._reconnect()
            raise DriverNotInitialized(
                f"rbd (Ceph cluster of backend {self._backend.name} unreachable)"
            )
        return self._session

    async def _run(
        self,
        operation: str,
        attributes: dict[str, AttributeValue],
        function: Callable[..., T],
        *args: Any,
        deadline: float | None = -1.0,
    ) -> T:
        """``function(session, *args)`` on the executor in a ``volume.driver.rbd.<operation>``
        span; librados/librbd errors become DriverError."""
        session = self._current()
        attributes = {"rbd.pool": self._backend.rbd_pool, **attributes}
        rados, rbd = self._modules()
        with tracer().start_as_current_span(
            f"volume.driver.rbd.{operation}", attributes=attributes
        ) as span:
            try:
                return await self._blocking(
                    function,
                    session,
                    *args,
                    deadline=self._deadline if deadline == -1.0 else deadline,
                )
            except (VolumeIsBusy, SnapshotIsBusy) as error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                raise
            except (rados.Error, rbd.Error) as error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                if isinstance(error, getattr(rados, "ConnectionShutdown", ())):
                    self._drop(session)
                raise DriverError(
                    f"rbd: {operation} failed: {type(error).__name__}: {error}"
                ) from error
            except DriverError as error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                raise

    @contextlib.contextmanager
    def _image(self, session: _Session, name: str, read_only: bool = False) -> Iterator[Any]:
        _, rbd = self._modules()
        image = rbd.Image(session.ioctx, name, read_only=read_only)
        try:
            yield image
        finally:
            image.close()

    # -- create and delete ---------------------------------------------------------------

    def _attributes(self, name: str, size_gb: int | None = None) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {"rbd.image": name}
        if size_gb is not None:
            attributes["volume.size_gb"] = size_gb
        if self._session is not None:
            attributes["rbd.features"] = feature_names(self._session.features)
        return attributes

    def _create_blocking(self, session: _Session, name: str, size_bytes: int) -> bool:
        """False if the image was there already."""
        _, rbd = self._modules()
        try:
            rbd.RBD().create(
                session.ioctx, name, size_bytes, ORDER, old_format=False, features=session.features
            )
        except rbd.ImageExists:
            return False
        self._sizes[name] = size_bytes
        return True

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        name = volume_name(volume_id)
        log.debug("creating volume '%s'", name)
        attributes = self._attributes(name, size_gb) | {"volume.id": volume_id}
        created = await self._run("create", attributes, self._create_blocking, name, size_gb * GIB)
        trace.get_current_span().set_attribute("rbd.already_there", not created)
        self._leftovers.discard(name)

    async def delete_volume(self, volume_id: str) -> None:
        name = volume_name(volume_id)
        attributes = self._attributes(name) | {"volume.id": volume_id}
        try:
            outcome = await self._run("delete", attributes, self._delete_blocking, name)
        except (VolumeIsBusy, DriverNotInitialized):
            raise
        except DriverError:
            # Unknown outcome (the cluster did not answer): removed once it answers again.
            self._leftovers.add(name)
            raise
        self._leftovers.discard(name)
        log.debug("volume %s: %s", name, outcome)

    def _clone_info(
        self, image: Any, name: str, snap: str | None = None
    ) -> tuple[str, str, str] | tuple[None, None, None]:
        """The parent (pool, image, snap) if the image is a clone of a volume (its parent's
        snapshot is ``<name>.clone_snap``), as Cinder's ``_get_clone_info``."""
        _, rbd = self._modules()
        try:
            if snap:
                image.set_snap(snap)
            pool, parent, parent_snap = tuple(image.parent_info())
            if snap:
                image.set_snap(None)
            base = name.removesuffix(_DELETED)
            if parent_snap == f"{base}{_CLONE_SNAP}":
                return pool, parent, parent_snap
        except rbd.ImageNotFound:
            image.set_snap(None)
        return None, None, None

    def _flatten_children(self, session: _Session, name: str, snap: str | None = None) -> int:
        """Flattens the clones of the image's snapshots (of ``snap`` only if given)."""
        _rados, rbd = self._modules()
        children: list[tuple[str, str]] = []
        with self._image(session, name) as image:
            snaps = [snap] if snap is not None else [s["name"] for s in image.list_snaps()]
            for each in snaps:
                image.set_snap(each)
                children.extend(tuple(c) for c in image.list_children())
            image.set_snap(None)
        for pool, child in children:
            log.info("Image %s/%s is dependent on the image %s.", pool, child, name)
            ioctx = (
                session.ioctx if pool == self._backend.rbd_pool else session.client.open_ioctx(pool)
            )
            try:
                with contextlib.closing(rbd.Image(ioctx, child)) as image:
                    image.flatten()
            except rbd.ImageNotFound:
                pass
            finally:
                if ioctx is not session.ioctx:
                    ioctx.close()
        return len(children)

    def _delete_clone_parent_refs(self, session: _Session, parent: str, parent_snap: str) -> None:
        """Walks up a chain of clones of volumes, removing the temporary snapshots and the
        parents already deleted (``.deleted``) that nothing depends on any more."""
        _, rbd = self._modules()
        with self._image(session, parent) as image:
            _, grandparent, grandparent_snap = self._clone_info(image, parent, parent_snap)
            log.debug("deleting parent snapshot %s", parent_snap)
            with contextlib.suppress(rbd.InvalidArgument):
                image.unprotect_snap(parent_snap)
            image.remove_snap(parent_snap)
            has_snaps = bool(list(image.list_snaps()))
        if not has_snaps and parent.endswith(_DELETED):
            log.debug("deleting parent %s", parent)
            rbd.RBD().remove(session.ioctx, parent)
            self._sizes.pop(parent, None)
            if grandparent is not None and grandparent_snap is not None:
                self._delete_clone_parent_refs(session, grandparent, grandparent_snap)

    def _delete_blocking(self, session: _Session, name: str) -> str:
        _, rbd = self._modules()
        try:
            with self._image(session, name) as image:
                clone_snap = next(
                    (s["name"] for s in image.list_snaps() if s["name"].endswith(_CLONE_SNAP)),
                    None,
                )
                _, parent, parent_snap = self._clone_info(image, name, clone_snap)
        except rbd.ImageNotFound:
            log.info("volume %s no longer exists in backend", name)
            return "already gone"
        if clone_snap is not None:
            # Clones depend on it: kept as a silent volume, removed with its last clone.
            rbd.RBD().rename(session.ioctx, name, f"{name}{_DELETED}")
            self._sizes[f"{name}{_DELETED}"] = self._sizes.pop(name, 0)
            return "renamed (it has clones)"
        try:
            rbd.RBD().remove(session.ioctx, name)
            self._sizes.pop(name, None)
            if parent is not None and parent_snap is not None:
                # Cinder walks the chain only after a trash move; a removed clone of a volume
                # would otherwise leave its parent's .clone_snap (and a .deleted parent) behind.
                self._delete_clone_parent_refs(session, parent, parent_snap)
            return "removed"
        except (rbd.ImageHasSnapshots, rbd.ImageBusy):
            self._flatten_children(session, name)
        except rbd.ImageNotFound:
            return "already gone"
        for attempt in range(REMOVE_TRIES):
            try:
                rbd.RBD().remove(session.ioctx, name)
                self._sizes.pop(name, None)
                return "removed"
            except rbd.ImageNotFound:
                return "already gone"
            except rbd.ImageHasSnapshots:
                break  # the trash takes images with snapshots
            except rbd.ImageBusy as error:
                if attempt == REMOVE_TRIES - 1:
                    raise VolumeIsBusy(
                        name, "ImageBusy error raised while deleting RBD volume"
                    ) from error
                time.sleep(REMOVE_INTERVAL)
        try:
            rbd.RBD().trash_move(session.ioctx, name, 0)
        except rbd.ImageBusy as error:
            raise VolumeIsBusy(name, "ImageBusy error raised while trashing RBD volume") from error
        self._sizes.pop(name, None)
        if parent is not None and parent_snap is not None:
            self._delete_clone_parent_refs(session, parent, parent_snap)
        return "moved to the trash"

    async def _remove_leftovers(self) -> None:
        while True:
            await asyncio.sleep(JANITOR_INTERVAL)
            if not self._leftovers or self._session is None:
                continue
            for name in sorted(self._leftovers):
                try:
                    outcome = await self._run(
                        "delete", self._attributes(name), self._delete_blocking, name
                    )
                except Exception as error:
                    log.debug("image %s left by a failed create not removed yet: %s", name, error)
                    continue
                self._leftovers.discard(name)
                log.info("image %s left by a failed create: %s", name, outcome)

    # -- listing and capacity ------------------------------------------------------------

    def _list_blocking(self, session: _Session) -> list[str]:
        _, rbd = self._modules()
        return [str(name) for name in rbd.RBD().list(session.ioctx)]

    async def list_volumes(self) -> list[str]:
        names = await self._run("list", {}, self._list_blocking)
        return sorted(v for name in names if (v := _volume_id_of(name)) is not None)

    def _scan_sizes_blocking(self, session: _Session) -> dict[str, int]:
        _, rbd = self._modules()
        sizes: dict[str, int] = {}
        for name in rbd.RBD().list(session.ioctx):
            try:
                with self._image(session, name, read_only=True) as image:
                    sizes[name] = int(image.size())
            except (rbd.ImageNotFound, rbd.OSError):
                log.debug("Image %s is not found.", name)
        return sizes

    def _pool_stats_blocking(self, session: _Session) -> PoolStats:
        pool = self._backend.rbd_pool
        ret, df, status = session.client.mon_command(
            json.dumps({"prefix": "df", "format": "json"}), b""
        )
        if ret:
            raise DriverError(f"rbd: cannot read the pool stats: {status}")
        ret, quota, status = session.client.mon_command(
            json.dumps({"prefix": "osd pool get-quota", "pool": pool, "format": "json"}), b""
        )
        if ret:
            raise DriverError(f"rbd: cannot read the pool quota: {status}")
        return parse_pool_stats(json.loads(df), json.loads(quota), pool)

    def _down_stats(self) -> CapacityStats:
        volumes = {n: s for n, s in self._sizes.items() if _volume_id_of(n) is not None}
        return CapacityStats(
            total_capacity_gb=0.0,
            free_capacity_gb=0.0,
            allocated_capacity_gb=float(sum(_ceil_gib(s) for s in volumes.values())),
            provisioned_capacity_gb=0.0,
            thin_provisioning_support=True,
            thick_provisioning_support=False,
            max_over_subscription_ratio=self._backend.max_over_subscription_ratio,
            reserved_percentage=self._backend.reserved_percentage,
            total_volumes=len(volumes),
            backend_state=BACKEND_DOWN,
            location_info=self.location_info,
        )

    async def get_capacity(self) -> CapacityStats:
        if self._session is None:
            return self._down_stats()
        try:
            stats = await self._run("get_capacity", {}, self._pool_stats_blocking)
            now = time.monotonic()
            if now - self._sizes_at >= self._backend.report_interval:
                self._sizes = await self._run("scan_sizes", {}, self._scan_sizes_blocking)
                self._sizes_at = now
        except DriverError as error:
            log.warning("error refreshing volume stats: %s", error)
            return self._down_stats()
        free, total = pool_capacity(stats)
        volumes = {n: s for n, s in self._sizes.items() if _volume_id_of(n) is not None}
        return CapacityStats(
            total_capacity_gb=total,
            free_capacity_gb=free,
            allocated_capacity_gb=float(sum(_ceil_gib(s) for s in volumes.values())),
            provisioned_capacity_gb=float(math.ceil(sum(self._sizes.values()) / GIB)),
            thin_provisioning_support=True,
            thick_provisioning_support=False,
            max_over_subscription_ratio=self._backend.max_over_subscription_ratio,
            reserved_percentage=self._backend.reserved_percentage,
            total_volumes=len(volumes),
            backend_state=BACKEND_UP,
            location_info=self.location_info,
            extra={"multiattach": "True", "qos_support": "False", "replication_enabled": "False"},
        )

    # -- snapshots, clones, extend, revert -----------------------------------------------

    def _create_snapshot_blocking(self, session: _Session, snapshot: SnapshotRef) -> None:
        _, rbd = self._modules()
        with self._image(session, snapshot.volume_name) as image:
            with contextlib.suppress(rbd.ImageExists):
                image.create_snap(snapshot.name)
            if not image.is_protected_snap(snapshot.name):
                image.protect_snap(snapshot.name)

    async def create_snapshot(self, snapshot: SnapshotRef) -> None:
        attributes = self._attributes(snapshot.volume_name, snapshot.volume_size_gb) | {
            "rbd.snapshot": snapshot.name
        }
        await self._run("create_snapshot", attributes, self._create_snapshot_blocking, snapshot)

    def _delete_snapshot_blocking(self, session: _Session, snapshot: SnapshotRef) -> str:
        # The volume may have been deleted already and kept as ``.deleted`` for its clones.
        for image_name in (snapshot.volume_name, f"{snapshot.volume_name}{_DELETED}"):
            outcome = self._delete_snap_of(session, image_name, snapshot)
            if outcome != "no image":
                return outcome
        return "already gone"

    def _delete_snap_of(self, session: _Session, image_name: str, snapshot: SnapshotRef) -> str:
        _, rbd = self._modules()
        for attempt in range(REMOVE_TRIES):
            try:
                with self._image(session, image_name) as image:
                    if snapshot.name not in {s["name"] for s in image.list_snaps()}:
                        log.info("Snapshot %s does not exist in backend.", snapshot.name)
                        return "already gone"
                    image.unprotect_snap(snapshot.name)
                break
            except rbd.InvalidArgument:
                break  # not protected
            except rbd.ImageNotFound:
                return "no image"
            except rbd.ImageBusy as error:
                if attempt == REMOVE_TRIES - 1:
                    raise SnapshotIsBusy(snapshot.name) from error
                self._flatten_children(session, image_name, snapshot.name)
        try:
            with self._image(session, image_name) as image:
                image.remove_snap(snapshot.name)
                left = bool(list(image.list_snaps()))
        except rbd.ImageNotFound:
            return "already gone"
        if image_name.endswith(_DELETED) and not left:
            # The last thing that kept a deleted volume: remove it now.
            with contextlib.suppress(rbd.ImageNotFound):
                rbd.RBD().remove(session.ioctx, image_name)
            self._sizes.pop(image_name, None)
            return f"removed, and the deleted volume {image_name} with it"
        return "removed"

    async def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        attributes = self._attributes(snapshot.volume_name) | {"rbd.snapshot": snapshot.name}
        await self._run(
            "delete_snapshot", attributes, self._delete_snapshot_blocking, snapshot, deadline=None
        )

    def _resize_if_smaller(self, session: _Session, name: str, size_bytes: int) -> None:
        with self._image(session, name) as image:
            if image.size() < size_bytes:
                image.resize(size_bytes)
        self._sizes[name] = max(self._sizes.get(name, 0), size_bytes)

    def _flatten(self, session: _Session, name: str) -> None:
        log.debug("flattening %s/%s", self._backend.rbd_pool, name)
        with self._image(session, name) as image:
            image.flatten()

    def _from_snapshot_blocking(
        self, session: _Session, name: str, size_bytes: int, snapshot: SnapshotRef
    ) -> bool:
        _, rbd = self._modules()
        with self._image(session, snapshot.volume_name, read_only=True) as source:
            order = max(int(math.log2(source.stripe_unit())), ORDER)
        with contextlib.suppress(rbd.ImageExists):
            rbd.RBD().clone(
                session.ioctx,
                snapshot.volume_name,
                snapshot.name,
                session.ioctx,
                name,
                features=session.features,
                order=order,
            )
        flatten = self._policy.flatten_volume_from_snapshot
        if flatten:
            self._flatten(session, name)
        self._resize_if_smaller(session, name, size_bytes)
        return flatten

    async def create_volume_from_snapshot(
        self, volume_id: str, size_gb: int, snapshot: SnapshotRef
    ) -> None:
        name = volume_name(volume_id)
        attributes = self._attributes(name, size_gb) | {
            "volume.id": volume_id,
            "rbd.source": f"{snapshot.volume_name}@{snapshot.name}",
        }
        flattened = await self._run(
            "create_from_snapshot",
            attributes,
            self._from_snapshot_blocking,
            name,
            size_gb * GIB,
            snapshot,
            deadline=None,
        )
        trace.get_current_span().set_attribute("rbd.flattened", flattened)

    def _clone_depth(self, session: _Session, name: str) -> int:
        """The number of ancestors (clone parents) of the image."""
        _, rbd = self._modules()
        depth = 0
        while True:
            with self._image(session, name, read_only=True) as image:
                try:
                    _pool, parent, _snap = image.parent_info()
                except rbd.ImageNotFound:
                    return depth
            depth += 1
            name = parent

    def _cloned_blocking(
        self, session: _Session, name: str, size_bytes: int, source: SourceVolumeRef
    ) -> str:
        _, rbd = self._modules()
        if self._policy.full_copy:
            with self._image(session, source.name, read_only=True) as image:
                image.copy(session.ioctx, name, features=session.features)
            self._resize_if_smaller(session, name, size_bytes)
            return "copied"
        clone_snap = f"{name}{_CLONE_SNAP}"
        with self._image(session, source.name) as image:
            log.debug("creating snapshot='%s'", clone_snap)
            with contextlib.suppress(rbd.ImageExists):
                image.create_snap(clone_snap)
            try:
                if not image.is_protected_snap(clone_snap):
                    image.protect_snap(clone_snap)
                rbd.RBD().clone(
                    session.ioctx,
                    source.name,
                    clone_snap,
                    session.ioctx,
                    name,
                    features=session.features,
                )
            except rbd.ImageExists:
                pass
            except BaseException:
                with contextlib.suppress(rbd.Error):
                    image.unprotect_snap(clone_snap)
                    image.remove_snap(clone_snap)
                raise
            depth = self._clone_depth(session, source.name)
            how = f"cloned (source depth {depth})"
            if self._policy.flatten_clone(depth):
                log.info(
                    "maximum clone depth (%d) has been reached - flattening dest volume",
                    self._policy.max_clone_depth,
                )
                self._flatten(session, name)
                image.unprotect_snap(clone_snap)
                image.remove_snap(clone_snap)
                how = f"cloned and flattened (source depth {depth})"
        self._resize_if_smaller(session, name, size_bytes)
        return how

    async def create_cloned_volume(
        self, volume_id: str, size_gb: int, source: SourceVolumeRef
    ) -> None:
        name = volume_name(volume_id)
        attributes = self._attributes(name, size_gb) | {
            "volume.id": volume_id,
            "rbd.source": source.name,
            "rbd.max_clone_depth": self._policy.max_clone_depth,
        }
        how = await self._run(
            "create_cloned",
            attributes,
            self._cloned_blocking,
            name,
            size_gb * GIB,
            source,
            deadline=None,
        )
        trace.get_current_span().set_attribute("rbd.clone", how)

    def _extend_blocking(self, session: _Session, name: str, size_bytes: int) -> None:
        with self._image(session, name) as image:
            if image.size() > size_bytes:
                raise DriverError(f"rbd: cannot shrink {name} to {size_bytes} bytes")
            image.resize(size_bytes)
        self._sizes[name] = size_bytes

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        name = volume_name(volume_id)
        attributes = self._attributes(name, new_size_gb) | {"volume.id": volume_id}
        await self._run("extend", attributes, self._extend_blocking, name, new_size_gb * GIB)

    def _revert_blocking(self, session: _Session, name: str, snapshot: SnapshotRef) -> None:
        with self._image(session, name) as image:
            image.rollback_to_snap(snapshot.name)

    async def revert_to_snapshot(self, volume_id: str, snapshot: SnapshotRef) -> None:
        name = volume_name(volume_id)
        attributes = self._attributes(name) | {
            "volume.id": volume_id,
            "rbd.snapshot": snapshot.name,
        }
        await self._run("revert", attributes, self._revert_blocking, name, snapshot, deadline=None)

    # -- data (migration) -------------------------------------------------------------

    def _read_blocking(self, session: _Session, name: str, offset: int, length: int) -> bytes:
        with self._image(session, name, read_only=True) as image:
            size = int(image.size())
            if offset >= size:
                return b""
            return bytes(image.read(offset, min(length, size - offset)))

    def _write_blocking(self, session: _Session, name: str, offset: int, data: bytes) -> None:
        with self._image(session, name) as image:
            if offset + len(data) > int(image.size()):
                raise DriverError(f"rbd: write past the end of {name}")
            image.write(data, offset)

    async def read_volume_data(self, volume_id: str, offset: int, length: int) -> bytes:
        """A range of the image (a read-only open: no exclusive lock), on the executor."""
        name = volume_name(volume_id)
        attributes = self._attributes(name) | {"volume.id": volume_id, "rbd.offset": offset}
        return await self._run("read", attributes, self._read_blocking, name, offset, length)

    async def write_volume_data(self, volume_id: str, offset: int, data: bytes) -> None:
        """Writes a range of the image, on the executor."""
        name = volume_name(volume_id)
        attributes = self._attributes(name) | {"volume.id": volume_id, "rbd.offset": offset}
        await self._run("write", attributes, self._write_blocking, name, offset, data)

    # -- connections -----------------------------------------------------------------

    def _mon_addrs_blocking(self, session: _Session, name: str) -> tuple[list[str], list[str]]:
        with self._image(session, name, read_only=True):
            pass  # the volume must exist
        ret, out, status = session.client.mon_command(
            json.dumps({"prefix": "mon dump", "format": "json"}), b""
        )
        if ret:
            raise DriverError(f"rbd: cannot read the monitor map: {status}")
        return parse_mon_addrs(json.loads(out))

    async def initialize_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> ConnectionInfo:
        name = volume_name(volume_id)
        hosts, ports = await self._run(
            "initialize_connection", self._attributes(name), self._mon_addrs_blocking, name
        )
        b = self._backend
        return ConnectionInfo(
            driver_volume_type="rbd",
            data=RbdConnectionData(
                name=f"{b.rbd_pool}/{name}",
                hosts=tuple(hosts),
                ports=tuple(ports),
                cluster_name=b.rbd_cluster_name,
                auth_enabled=bool(b.rbd_user),
                auth_username=b.rbd_user,
                secret_type="ceph",
                secret_uuid=b.rbd_secret_uuid or None,
                volume_id=volume_id,
                discard=True,
            ),
        )

    async def terminate_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> None:
        return None


def _named(value: object) -> int | None:
    """``rbd_default_features`` given by names (``layering,exclusive-lock``)."""
    if not value:
        return None
    bits = 0
    for name in str(value).replace(" ", "").split(","):
        bits |= FEATURE_BITS.get(name, 0)
    return bits or None


def _shutdown(session: _Session) -> None:
    with contextlib.suppress(Exception):
        session.ioctx.close()
    session.client.shutdown()
