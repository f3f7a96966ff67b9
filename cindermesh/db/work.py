"""The durable record of accepted work: who holds a volume, until when, and what was tried.

Cinder's casts sat in RabbitMQ until a worker took them. Here the volume row is the queue: the
work a volume needs follows from its row, and any process that can do that work may take it
once nobody holds it. Every hand-over is a conditional write of the row, so two processes (two
replicas, or a process and its own restart) can race for the same volume and exactly one wins;
an RPC to the next hop is only the fast path that saves the winner a wait.

==================================  ===========================  ================================
row                                 work                         who takes it
==================================  ===========================  ================================
``creating``, no host               place it (schedule)          any scheduler, at once through
                                                                 Scheduler.CreateVolume, or by
                                                                 its sweep ``unplaced_grace``
                                                                 after the row last changed
``creating``, host, no worker       create it on that backend    the backend's manager, through
                                                                 VolumeManager.CreateVolume or
                                                                 its sweep; past
                                                                 ``lease_expires_at`` (the
                                                                 hand-off deadline) a scheduler
                                                                 places it again
``creating``, host, worker          being created                its worker while the lease
                                                                 lasts (renewed as it works);
                                                                 past it, a scheduler places it
                                                                 again as another attempt
``deleting``                        delete it                    the backend's manager (no host:
                                                                 the api deletes it at once)
==================================  ===========================  ================================

A manager that starts takes over every volume of its backend at once (there is one manager per
backend), so a restart resumes its work without waiting for leases to lapse; images a previous
run left for volumes placed elsewhere since are removed then. Attempts and tried pools are on
the row (``schedule_attempts``, ``tried_hosts``), so whoever places a volume again knows them.

Why it holds on PostgreSQL with several replicas as well as on SQLite: every claim is a
read-modify-write of one row inside one transaction that locks it first (``SELECT ... FOR
UPDATE`` on PostgreSQL; on SQLite every writing transaction begins ``IMMEDIATE`` and so holds
the database's one write lock), and the write checks the state it read (status, host, worker,
lease, attempts): it is an UPDATE whose WHERE is that state, so a write that lost the race
matches no row (the writes are ``cindermesh.db.volumes``, shared by the three services). Sweeps
read candidates without locks and then claim each one that way, so a candidate someone else
took meanwhile is skipped. Leases compare wall-clock times written by
different processes: clocks are assumed synchronised (NTP) to well within a lease.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col

from cindermesh.db.models import Volume, utcnow

__all__ = ["free_at", "join_hosts", "lease_until", "split_hosts"]


def lease_until(seconds: float) -> dt.datetime:
    """The time a lease (or a deadline) taken now for ``seconds`` ends."""
    return utcnow() + dt.timedelta(seconds=seconds)


def free_at(now: dt.datetime) -> ColumnElement[bool]:
    """Rows nobody holds at ``now``: no worker, or a worker whose lease has lapsed."""
    return or_(
        col(Volume.worker).is_(None),
        and_(col(Volume.lease_expires_at).is_not(None), col(Volume.lease_expires_at) < now),
    )


def split_hosts(tried: str) -> tuple[str, ...]:
    """``tried_hosts`` as a tuple, oldest first."""
    return tuple(line for line in tried.split("\n") if line)


def join_hosts(hosts: Sequence[str]) -> str:
    return "\n".join(hosts)
