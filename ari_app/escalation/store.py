"""Redis persistence of a call's complaint in progress: `etq:complaint-flow:{call id}`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.escalation.machine import ComplaintMachine
from ari_app.storage.snapshots import SnapshotStore

__all__ = ["ComplaintStore"]


class ComplaintStore(SnapshotStore[ComplaintMachine]):
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        super().__init__(redis, "complaint-flow", ComplaintMachine, prefix)
