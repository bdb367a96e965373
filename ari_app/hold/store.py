"""Redis persistence of a call's current hold (one snapshot per call, deleted when the hold
ends; its history stays in the call's timeline)."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from ari_app.hold.machine import HoldMachine

__all__ = ["HoldStore"]


class HoldStore:
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        self.redis, self.prefix = redis, prefix

    def _key(self, call_id: str) -> str:
        return f"{self.prefix}:hold:{call_id}"

    async def load(self, call_id: str) -> HoldMachine | None:
        raw = await self.redis.get(self._key(call_id))
        return HoldMachine.from_dict(json.loads(raw)) if raw else None

    async def save(self, machine: HoldMachine) -> None:
        await self.redis.set(self._key(machine.call_id), json.dumps(machine.to_dict()))

    async def delete(self, call_id: str) -> None:
        await self.redis.delete(self._key(call_id))
