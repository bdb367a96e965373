"""Redis persistence of a call's survey in progress: `Keyspace.snapshot("survey", call id)`."""

from __future__ import annotations

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace
from ari_app.storage.snapshots import SnapshotStore
from ari_app.survey.machine import SurveyMachine

__all__ = ["SurveyStore"]


class SurveyStore(SnapshotStore[SurveyMachine]):
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        super().__init__(redis, "survey", SurveyMachine, keys=keys)
