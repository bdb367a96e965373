"""The shared FIFO of one queue in Redis, so several app instances serve one queue and the caller
who came first is connected first.

Two keys per queue with one hash tag (`Keyspace.queue_line`, `queue_entries`): a sorted set of
entry ids scored by their place, and a hash of the entries. The place is the arrival time,
moved ahead by whole `PRIORITY_STEP`s for a priority (a returning callback): higher priority
first, then who came first. A live caller's entry turned into a callback that keeps the place
keeps its score, so it never jumps a live caller who came earlier, nor falls behind a later
one. Taking the head for an operator is one script (first claim wins): two instances never hand
one caller to two operators. An entry taken and then not connected (the operator did not
answer) goes back with `enqueue` at its own arrival and priority: the same place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace

__all__ = ["CALLBACK", "LIVE", "PRIORITY_STEP", "QueueEntry", "QueueStore"]

LIVE, CALLBACK = "live", "callback"  # a caller on the line; a callback that keeps the place
PRIORITY_STEP = 1e10  # seconds: one priority level is worth more than any arrival time

# the head, atomically: ZRANGE, ZREM, HGET, HDEL (keys given, never built here)
_TAKE_HEAD = """
local ids = redis.call('zrange', KEYS[1], 0, 0)
if #ids == 0 then return false end
redis.call('zrem', KEYS[1], ids[1])
local raw = redis.call('hget', KEYS[2], ids[1])
redis.call('hdel', KEYS[2], ids[1])
return {ids[1], raw}
"""
# one entry out of line, if it is still in it (the one an operator was reserved for)
_TAKE = """
if redis.call('zrem', KEYS[1], ARGV[1]) == 0 then return false end
local raw = redis.call('hget', KEYS[2], ARGV[1])
redis.call('hdel', KEYS[2], ARGV[1])
return raw
"""
# a kind changed in place (the score, its place, stays)
_KEEP_PLACE = """
if not redis.call('zscore', KEYS[1], ARGV[1]) then return false end
redis.call('hset', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class QueueEntry:
    id: str                      # the call id, or the callback request's id
    arrival: float               # epoch seconds: when they came (kept by a kept place)
    kind: str = LIVE             # live | callback
    priority: int = 0            # 0-9: higher first (a returning callback)
    number: str | None = None    # for a callback: whom to dial
    request: str | None = None   # for a callback: its request (callback/service.py)
    node: str | None = None      # a live caller's Asterisk node (several nodes: only an
                                 # operator registered there can be bridged with them)

    @property
    def score(self) -> float:
        return self.arrival - self.priority * PRIORITY_STEP

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> QueueEntry:
        return cls(**json.loads(raw))


class QueueStore:
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        self.redis, self.keys = redis, keys
        self._take = redis.register_script(_TAKE_HEAD)
        self._keep = redis.register_script(_KEEP_PLACE)
        self._take_one = redis.register_script(_TAKE)

    def _keys(self, queue: str) -> list[str]:
        return [self.keys.queue_line(queue), self.keys.queue_entries(queue)]

    async def enqueue(self, queue: str, entry: QueueEntry) -> int:
        """Put `entry` in line (again: at its own place); its position, 1 = next."""
        if not 0 <= entry.priority <= 9:
            raise ValueError(f"priority must be 0-9: {entry.priority}")
        line, entries = self._keys(queue)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(entries, entry.id, entry.to_json())
            pipe.zadd(line, {entry.id: entry.score})
            pipe.zrank(line, entry.id)
            *_, rank = await pipe.execute()
        return int(rank) + 1

    async def position(self, queue: str, entry_id: str) -> int | None:
        """1 = next; None when not in line (taken, removed)."""
        rank = await self.redis.zrank(self.keys.queue_line(queue), entry_id)
        return None if rank is None else int(rank) + 1

    async def remove(self, queue: str, entry_id: str) -> bool:
        """Out of line (hung up, left a message); False when it was not there."""
        line, entries = self._keys(queue)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(line, entry_id)
            pipe.hdel(entries, entry_id)
            removed, _ = await pipe.execute()
        return bool(removed)

    async def head(self, queue: str, node: str | None = None) -> QueueEntry | None:
        """The first in line; with `node`, the first an operator on that Asterisk node can
        take (a callback, or a live caller on that node): callers on other nodes keep their
        places for their own node's operators."""
        line, entries = self._keys(queue)
        start = 0
        while True:
            ids = await self.redis.zrange(line, start, start + (0 if node is None else 63))
            if not ids:
                return None
            raws = await self.redis.hmget(entries, ids)
            for raw in raws:
                if not raw:
                    continue
                entry = QueueEntry.from_json(raw)
                if node is None or entry.kind == CALLBACK or entry.node in (None, node):
                    return entry
            start += len(ids)

    async def take_head(self, queue: str) -> QueueEntry | None:
        """The head, out of line, for the operator who asks first; None when nobody waits."""
        taken = await self._take(keys=self._keys(queue))
        if not taken:
            return None
        return QueueEntry.from_json(taken[1])

    async def take(self, queue: str, entry_id: str) -> QueueEntry | None:
        """`entry_id` out of line for the operator reserved for it; None when another
        instance took it first (or it left)."""
        raw = await self._take_one(keys=self._keys(queue), args=[entry_id])
        return QueueEntry.from_json(raw) if raw else None

    async def entry(self, queue: str, entry_id: str) -> QueueEntry | None:
        raw = await self.redis.hget(self.keys.queue_entries(queue), entry_id)
        return QueueEntry.from_json(raw) if raw else None

    async def keep_place(self, queue: str, entry_id: str, number: str,
                         request: str | None = None) -> QueueEntry | None:
        """Turn a live caller's entry into a callback to `number` at the same place; None
        when the entry is no longer in line."""
        raw = await self.redis.hget(self.keys.queue_entries(queue), entry_id)
        if not raw:
            return None
        entry = QueueEntry.from_json(raw)
        kept = QueueEntry(entry.id, entry.arrival, CALLBACK, entry.priority, number, request)
        done = await self._keep(keys=self._keys(queue), args=[entry_id, kept.to_json()])
        return kept if done else None

    async def waiting(self, queue: str) -> list[QueueEntry]:
        """Everyone in line, in order (GET /api/queues)."""
        line, entries = self._keys(queue)
        ids = await self.redis.zrange(line, 0, -1)
        if not ids:
            return []
        raws: Sequence[bytes | None] = await self.redis.hmget(entries, ids)
        return [QueueEntry.from_json(raw) for raw in raws if raw]

    async def length(self, queue: str) -> int:
        return int(await self.redis.zcard(self.keys.queue_line(queue)))
