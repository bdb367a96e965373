"""The etiquette log: a consumer of call events that keeps, in Redis, one typed list per call
(`etq:{call}:timeline`, read back by `CallStore.timeline`) and one per operator and UTC day
(`etq:etiquette:operator:{endpoint}:{YYYY-MM-DD}`), each kept `retention.etiquette_log_days`.
An operator's own steps (`operator:*`: logged in, paused, ...) have no call: only their day
keeps them.

`on_event` only queues (the call never waits for Redis); one task writes the queue in order, a
batch per pipeline: it lingers `linger` seconds after the first entry so that a call's steps
and other calls' land in one round trip, one RPUSH per list with all its new entries, and a
list's EXPIRE is renewed only when this process has not renewed it for `REFRESH` seconds
(the retention is days: an hour more or less is nothing, a command per entry was most of the
log's cost). With Redis away it keeps the batch and tries again (a bounded queue: past
`max_queued` the oldest entries are dropped, and counted). Transitions (`*:state_changed`) are
for the stream, metrics and log lines; the log keeps the facts.
"""

from __future__ import annotations

import json
import time
from collections import deque

import orjson
import structlog
from redis.asyncio import Redis

from ari_app.calls.events import STATE_CHANGED, CallEvent
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.writer import BackgroundWriter

__all__ = ["EtiquetteLog", "entry_of", "operator_day"]

logger = structlog.get_logger()

BATCH = 500
REFRESH = 3600.0  # s between renewals of one list's retention by this process


def entry_of(event: CallEvent) -> dict:
    """The stored entry: the timeline's shape ("t", "rule", "event", data), plus the typed
    step name and the operator."""
    entry: dict = {"t": round(event.at, 3), "rule": event.rule, "event": event.label,
                   **event.data, "step": event.name}
    if event.operator and "operator" not in entry:
        entry["operator"] = event.operator
    return entry


def operator_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


class EtiquetteLog(BackgroundWriter):
    what = "etiquette log"

    def __init__(self, redis: Redis, retention_days: int, *, keys: Keyspace,
                 max_queued: int = 100_000, retry_pause: float = 0.5,
                 linger: float = 0.05) -> None:
        super().__init__(retry_pause=retry_pause, linger=linger)
        self.redis, self.keys = redis, keys
        self.ttl = int(retention_days * 86400)
        self.max_queued = max_queued
        self._expiring: dict[str, float] = {}  # list -> when this process last renewed its ttl
        self.dropped = 0
        self._queue: deque[tuple[str, str]] = deque()  # (key, JSON entry)

    # --- keys ------------------------------------------------------------------------------------
    def call_key(self, call_id: str) -> str:
        return self.keys.timeline(call_id)

    def operator_key(self, endpoint: str, day: str) -> str:
        return self.keys.operator_day(endpoint, day)

    # --- the consumer (sync, cheap) ------------------------------------------------------------
    def on_event(self, event: CallEvent) -> None:
        if event.label == STATE_CHANGED:
            return
        raw = orjson.dumps(entry_of(event), option=orjson.OPT_NON_STR_KEYS).decode()
        if event.call_id:  # an operator's own step (logged in, paused) belongs to no call
            self._push(self.call_key(event.call_id), raw)
            # the same entry and its call: `{...,"call_id":"<call>"}`
            raw = f'{raw[:-1]},"call_id":{orjson.dumps(event.call_id).decode()}}}'
        if event.operator:
            self._push(self.operator_key(event.operator, operator_day(event.at)), raw)
        self._queued()

    def _push(self, key: str, raw: str) -> None:
        if len(self._queue) >= self.max_queued:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("etiquette log entries dropped", dropped=self.dropped,
                               why="queue full while Redis is away")
        self._queue.append((key, raw))

    # --- the writer (storage/writer.py runs it) -------------------------------------------
    def _has_pending(self) -> bool:
        return bool(self._queue)

    def _take(self) -> list[tuple[str, str]]:
        return [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]

    def _put_back(self, batch: list[tuple[str, str]]) -> None:
        self._queue.extendleft(reversed(batch))

    async def _write(self, batch: list[tuple[str, str]]) -> None:
        lists: dict[str, list[str]] = {}
        for key, raw in batch:  # in order within each list, which is all order means here
            lists.setdefault(key, []).append(raw)
        now = time.monotonic()
        expire = [key for key in lists if now - self._expiring.get(key, -REFRESH) >= REFRESH]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, values in lists.items():
                pipe.rpush(key, *values)
            for key in expire:
                pipe.expire(key, self.ttl)
            await pipe.execute()
        if len(self._expiring) > 100_000:  # lists of calls long over: forget them
            self._expiring = {k: t for k, t in self._expiring.items() if now - t < REFRESH}
        for key in expire:
            self._expiring[key] = now

    # --- reading ---------------------------------------------------------------------------------
    async def read(self, call_id: str) -> list[dict]:
        await self.flush()
        return [json.loads(x) for x in await self.redis.lrange(self.call_key(call_id), 0, -1)]

    async def read_operator(self, endpoint: str, day: str) -> list[dict]:
        await self.flush()
        raw = await self.redis.lrange(self.operator_key(endpoint, day), 0, -1)
        return [json.loads(x) for x in raw]
