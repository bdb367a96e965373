"""Redis persistence of a call's warning in progress: `Keyspace.snapshot("warning", call id)`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace
from ari_app.storage.snapshots import SnapshotStore
from ari_app.warning.machine import WarningMachine

__all__ = ["WarningStore"]


class WarningStore(SnapshotStore[WarningMachine]):
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        super().__init__(redis, "warning", WarningMachine, keys=keys)
