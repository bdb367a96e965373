"""The customer card: per phone number, the name we know and what happened (requests, calls,
voicemails, outcomes), so an operator calling back, or taking the same customer's next call,
starts from what the customer already told us."""

from __future__ import annotations

import json
import time

import orjson
from redis.asyncio import Redis

from ari_app.storage.batch import Batched
from ari_app.storage.keyspace import Keyspace

__all__ = ["Customers"]

HISTORY_KEPT = 200
# One entry on the card, at once: the name (when given), the first contact, the history
# (capped). The card and its history share the number's hash tag (one Cluster slot). The
# first contact is written by the card's first entry and the history trimmed once it is over
# its cap, not at every entry: a web form notes one, thousands a second at a campaign's peak.
_NOTE = """
if ARGV[1] ~= '' then redis.call('hset', KEYS[1], 'name', ARGV[1]) end
local entries = redis.call('rpush', KEYS[2], ARGV[3])
if entries == 1 then redis.call('hsetnx', KEYS[1], 'first_seen', ARGV[2]) end
if entries > tonumber(ARGV[4]) then redis.call('ltrim', KEYS[2], -tonumber(ARGV[4]), -1) end
return 1
"""


class Customers:
    def __init__(self, redis: Redis, *, keys: Keyspace, batch: Batched | None = None) -> None:
        self.redis, self.keys = redis, keys
        self.batch = batch or Batched(redis)  # a note rides with other requests' commands
        self._note = self.batch.script(_NOTE)

    def _key(self, number: str) -> str:
        return self.keys.customer(number)

    async def note(self, number: str, event: str, name: str | None = None,
                   **data: object) -> None:
        if not number:
            return
        entry = {"t": round(time.time(), 3), "event": event,
                 **{k: v for k, v in data.items() if v is not None}}
        await self.batch.send(self._note.call(
            keys=[self._key(number), self.keys.customer_history(number)],
            args=[name or "", repr(entry["t"]), orjson.dumps(entry), HISTORY_KEPT]))

    async def noted(self, number: str, recent: int = 50, **match: object) -> bool:
        """Whether one of the card's last `recent` entries has these fields: a step tried
        again after storage failed asks it before noting what it may have noted already."""
        raw = await self.redis.lrange(self.keys.customer_history(number), -recent, -1)
        return any(all(entry.get(k) == v for k, v in match.items())
                   for entry in map(json.loads, raw))

    async def card(self, number: str) -> dict | None:
        info = await self.redis.hgetall(self._key(number))
        if not info:
            return None
        history = [json.loads(x) for x in
                   await self.redis.lrange(self.keys.customer_history(number), 0, -1)]
        info = {k.decode(): v.decode() for k, v in info.items()}
        return {"number": number, "name": info.get("name", ""),
                # a card whose hash was cleared but not its history: its first entry's time
                "first_seen": float(info.get("first_seen") or (history[0]["t"] if history else 0)),
                "history": history,
                "callback_requests": sum(e["event"] == "callback requested" for e in history)}
