"""Reading many keys at once, for the readers that show many calls or operators (the
dashboard, the console, the queue's operator counts).

Pipelined GETs, not MGET: the keys carry different hash tags (storage/keyspace.py), so one
MGET would be refused by a Redis Cluster. In rounds of `ROUND` keys: each round trip lets the
event loop run what waits (the live stream's writes, the calls' steps) instead of parsing
hundreds of replies in one go; the dashboard's build over 200 calls was the live stream's p99
(bench/dashboard_stream.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

__all__ = ["ROUND", "get_each"]

ROUND = 64


async def get_each(redis: Redis, keys: Sequence[str]) -> list[bytes | None]:
    """Each key's value (None where there is none), in order."""
    values: list[bytes | None] = []
    for start in range(0, len(keys), ROUND):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys[start:start + ROUND]:
                pipe.get(key)
            values.extend(await pipe.execute())
    return values
