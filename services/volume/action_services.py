"""What the manager's action flows (extend, revert) call; built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from cindermesh.db.engine import Database
from services.volume.drivers.base import BlockStorageDriver

__all__ = ["ActionServices"]


@dataclass(frozen=True)
class ActionServices:
    db: Database
    #: The backend's whole driver (extend and revert are beyond the create flow's interface).
    driver: BlockStorageDriver
    #: This process's instance id: the ``worker`` of the volumes it holds.
    worker: str
