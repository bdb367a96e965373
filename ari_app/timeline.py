"""The etiquette timeline of a call: what the caller heard and what each rule decided, when.

One Redis list per call, appended to as things happen and kept after the call for review.
"""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

__all__ = ["Timeline", "TIMELINE_TTL"]

TIMELINE_TTL = 30 * 24 * 3600  # a month of history for quality review


class Timeline:
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        self.redis, self.prefix = redis, prefix

    def key(self, call_id: str) -> str:
        return f"{self.prefix}:timeline:{call_id}"

    async def note(self, call_id: str, event: str, rule: str, at: float | None = None,
                   **data: object) -> None:
        entry = {"t": round(at if at is not None else time.time(), 3), "rule": rule,
                 "event": event, **data}
        await self.redis.rpush(self.key(call_id), json.dumps(entry))

    async def read(self, call_id: str) -> list[dict]:
        return [json.loads(x) for x in await self.redis.lrange(self.key(call_id), 0, -1)]
