"""Redis persistence of a call's complaint in progress:
`Keyspace.snapshot("complaint-flow", call id)`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.escalation.machine import ComplaintMachine
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.snapshots import SnapshotStore

__all__ = ["ComplaintStore"]


class ComplaintStore(SnapshotStore[ComplaintMachine]):
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        super().__init__(redis, "complaint-flow", ComplaintMachine, keys=keys)
