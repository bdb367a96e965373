"""The customer card: per phone number, the name we know and what happened (requests, calls,
voicemails, outcomes), so an operator calling back, or taking the same customer's next call,
starts from what the customer already told us."""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace

__all__ = ["Customers"]

HISTORY_KEPT = 200


class Customers:
    def __init__(self, redis: Redis, *, keys: Keyspace) -> None:
        self.redis, self.keys = redis, keys

    def _key(self, number: str) -> str:
        return self.keys.customer(number)

    async def note(self, number: str, event: str, name: str | None = None,
                   **data: object) -> None:
        if not number:
            return
        entry = {"t": round(time.time(), 3), "event": event,
                 **{k: v for k, v in data.items() if v is not None}}
        async with self.redis.pipeline(transaction=True) as pipe:
            if name:
                pipe.hset(self._key(number), "name", name)
            pipe.hsetnx(self._key(number), "first_seen", entry["t"])
            pipe.rpush(self.keys.customer_history(number), json.dumps(entry))
            pipe.ltrim(self.keys.customer_history(number), -HISTORY_KEPT, -1)
            await pipe.execute()

    async def card(self, number: str) -> dict | None:
        info = await self.redis.hgetall(self._key(number))
        if not info:
            return None
        history = [json.loads(x) for x in
                   await self.redis.lrange(f"{self._key(number)}:history", 0, -1)]
        info = {k.decode(): v.decode() for k, v in info.items()}
        return {"number": number, "name": info.get("name", ""),
                "first_seen": float(info["first_seen"]), "history": history,
                "callback_requests": sum(e["event"] == "callback requested" for e in history)}
