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
        self._owned: dict[str, HoldMachine] = {}  # read cache, as in inbound/store.py

    def _key(self, call_id: str) -> str:
        return f"{self.prefix}:hold:{call_id}"

    async def load(self, call_id: str) -> HoldMachine | None:
        machine = self._owned.get(call_id)
        if machine is None:
            raw = await self.redis.get(self._key(call_id))
            if raw:
                machine = self._owned[call_id] = HoldMachine.from_dict(json.loads(raw))
        return machine

    async def save(self, machine: HoldMachine) -> None:
        self._owned[machine.call_id] = machine
        await self.redis.set(self._key(machine.call_id), json.dumps(machine.to_dict()))

    def forget_owned(self) -> None:
        self._owned.clear()

    async def delete(self, call_id: str) -> None:
        self._owned.pop(call_id, None)
        await self.redis.delete(self._key(call_id))
