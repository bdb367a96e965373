"""Redis persistence of a call's current transfer: `Keyspace.snapshot("transfer", call id)`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace
from ari_app.storage.snapshots import SnapshotStore
from ari_app.transfer.machine import TransferMachine

__all__ = ["TransferStore"]


class TransferStore(SnapshotStore[TransferMachine]):
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        super().__init__(redis, "transfer", TransferMachine, keys=keys)
