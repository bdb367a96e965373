"""Redis persistence of a call's current hold: `Keyspace.snapshot("hold", call id)`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.hold.machine import HoldMachine
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.snapshots import SnapshotStore

__all__ = ["HoldStore"]


class HoldStore(SnapshotStore[HoldMachine]):
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        super().__init__(redis, "hold", HoldMachine, keys=keys)
