"""Redis persistence of inbound calls: the machine snapshot per call, the set of live calls,
and the call's etiquette timeline (what the caller heard and when, kept after the call)."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from ari_app.inbound.machine import InboundMachine
from ari_app.timeline import TIMELINE_TTL, Timeline

__all__ = ["CallStore"]


class CallStore:
    """Redis is the truth; reads come from memory while this process owns the call (its
    events reach only this process), so a call's event costs no Redis read."""

    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        self.redis, self.prefix = redis, prefix
        self._owned: dict[str, InboundMachine] = {}
        self.live_key = f"{prefix}:calls"
        self.timeline_log = Timeline(redis, prefix)

    def _call_key(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}"

    def timeline_key(self, call_id: str) -> str:
        return self.timeline_log.key(call_id)

    async def load(self, call_id: str) -> InboundMachine | None:
        machine = self._owned.get(call_id)
        if machine is None:
            raw = await self.redis.get(self._call_key(call_id))
            if raw:
                machine = self._owned[call_id] = InboundMachine.from_dict(json.loads(raw))
        return machine

    async def save(self, machine: InboundMachine, snapshot: dict | None = None) -> None:
        self._owned[machine.call_id] = machine
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._call_key(machine.call_id), json.dumps(snapshot or machine.to_dict()))
            pipe.sadd(self.live_key, machine.call_id)
            await pipe.execute()

    def forget_owned(self) -> None:
        """After a reconnect, read everything from Redis again."""
        self._owned.clear()

    async def delete(self, call_id: str) -> None:
        self._owned.pop(call_id, None)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._call_key(call_id))
            pipe.srem(self.live_key, call_id)
            pipe.expire(self.timeline_key(call_id), TIMELINE_TTL)
            await pipe.execute()

    async def live_calls(self) -> list[str]:
        return sorted(m.decode() if isinstance(m, bytes) else m
                      for m in await self.redis.smembers(self.live_key))

    async def note(self, call_id: str, event: str, rule: str = "inbound", at: float | None = None,
                   **data: object) -> None:
        """Append one entry to the call's etiquette timeline."""
        await self.timeline_log.note(call_id, event, rule, at, **data)

    async def timeline(self, call_id: str) -> list[dict]:
        return await self.timeline_log.read(call_id)
