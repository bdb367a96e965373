"""Durable records the business acts on later (callback requests, voice messages, complaints):
one JSON value per record plus a time-ordered index, written in one transaction, so a record
is in Redis (append-only persistence) before anybody is told it was taken. The record and
its index share the kind's hash tag (`Keyspace.record`), one Cluster slot for the transaction."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from typing import Any, Generic, Protocol, TypeVar

import structlog
from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace

__all__ = ["DurableRecords", "is_record_id"]

logger = structlog.get_logger()
# What a record id looks like (uuid4 hex, or any short word): never a ":" nor a brace, so an
# id from a request cannot name another key (Keyspace.record puts it last, after "record:").
_RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_record_id(value: str) -> bool:
    return isinstance(value, str) and _RECORD_ID.fullmatch(value) is not None


# The record unless one with its id is there, and its index entry, at once (both keys share
# the kind's hash tag): 1 if this call wrote it.
_CREATE_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""


class Record(Protocol):
    id: str
    created_at: float


R = TypeVar("R", bound=Record)


class DurableRecords(Generic[R]):
    def __init__(self, redis: Redis, kind: str, record: type[R], *, keys: Keyspace,
                 on_created: Callable[[R], Awaitable[None]] | None = None) -> None:
        self.redis, self.kind, self.record, self.keys = redis, kind, record, keys
        self.on_created = on_created  # the customer's card, a webhook: awaited, never left behind
        self.index_key = keys.record_index(kind)

    def _key(self, record_id: str) -> str:
        return self.keys.record(self.kind, record_id)

    async def create(self, record: R) -> R:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(record.id), json.dumps(asdict(record)))  # type: ignore[call-overload]
            pipe.zadd(self.index_key, {record.id: record.created_at})
            await pipe.execute()
        if self.on_created is not None:
            await self.on_created(record)
        return record

    async def create_once(self, record: R) -> bool:
        """`create` unless a record with this id exists: for ids derived from what is recorded
        (several instances filing the same thing at once file it once). True for the caller
        that created it; only that one runs `on_created`."""
        created = await self.redis.eval(_CREATE_ONCE, 2, self._key(record.id), self.index_key,
                                        json.dumps(asdict(record)),  # type: ignore[call-overload]
                                        record.created_at, record.id)
        if not created:
            return False
        if self.on_created is not None:
            await self.on_created(record)
        return True

    async def exist(self, record_ids: list[str]) -> list[bool]:
        """Which of these records exist, in one round trip."""
        if not record_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for record_id in record_ids:
                pipe.exists(self._key(record_id))
            return [bool(n) for n in await pipe.execute()]

    async def get(self, record_id: str) -> R | None:
        """The record, or None: for an id that is not a record id and for a value that is
        not one of these records."""
        if not is_record_id(record_id):
            return None
        raw = await self.redis.get(self._key(record_id))
        if not raw:
            return None
        try:
            data = json.loads(raw)
            known = {f.name for f in fields(self.record)}  # type: ignore[arg-type]
            if not isinstance(data, dict) or not set(data) <= known:
                raise ValueError("not a record")
            return self.record(**data)
        except (ValueError, TypeError):
            logger.warning("not a record", kind=self.kind, record=record_id)
            return None

    async def all(self) -> list[R]:
        ids: list[Any] = await self.redis.zrange(self.index_key, 0, -1)
        found = [await self.get(i.decode() if isinstance(i, bytes) else i) for i in ids]
        return [r for r in found if r is not None]
