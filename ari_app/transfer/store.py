"""Redis persistence of a call's current transfer: `etq:transfer:{call id}`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.storage.snapshots import SnapshotStore
from ari_app.transfer.machine import TransferMachine

__all__ = ["TransferStore"]


class TransferStore(SnapshotStore[TransferMachine]):
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        super().__init__(redis, "transfer", TransferMachine, prefix)
