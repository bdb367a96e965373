"""Durable records the business acts on later (callback requests, voice messages, complaints):
one JSON value per record plus a time-ordered index, written in one transaction, so a record
is in Redis (append-only persistence) before anybody is told it was taken."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Generic, Protocol, TypeVar

from redis.asyncio import Redis

__all__ = ["DurableRecords"]


class Record(Protocol):
    id: str
    created_at: float


R = TypeVar("R", bound=Record)


class DurableRecords(Generic[R]):
    def __init__(self, redis: Redis, kind: str, index: str, record: type[R],
                 prefix: str = "etq") -> None:
        self.redis, self.kind, self.record, self.prefix = redis, kind, record, prefix
        self.index_key = f"{prefix}:{index}"

    def _key(self, record_id: str) -> str:
        return f"{self.prefix}:{self.kind}:{record_id}"

    async def create(self, record: R) -> R:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(record.id), json.dumps(asdict(record)))  # type: ignore[call-overload]
            pipe.zadd(self.index_key, {record.id: record.created_at})
            await pipe.execute()
        return record

    async def get(self, record_id: str) -> R | None:
        raw = await self.redis.get(self._key(record_id))
        return self.record(**json.loads(raw)) if raw else None

    async def all(self) -> list[R]:
        ids: list[Any] = await self.redis.zrange(self.index_key, 0, -1)
        found = [await self.get(i.decode() if isinstance(i, bytes) else i) for i in ids]
        return [r for r in found if r is not None]
