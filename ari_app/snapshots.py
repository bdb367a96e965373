"""Redis persistence of one rule's machine per call: a snapshot saved after every step,
deleted when the rule is done (its history stays in the call's timeline).

A read cache keeps the snapshots this process wrote, so a step costs one Redis write and no
read; it is dropped on every (re)connect, when another process may have moved on.
"""

from __future__ import annotations

import json
from typing import Generic, Protocol, TypeVar

from redis.asyncio import Redis

__all__ = ["SnapshotStore"]


class Machine(Protocol):
    call_id: str

    def to_dict(self) -> dict: ...


M = TypeVar("M", bound=Machine)


class SnapshotStore(Generic[M]):
    def __init__(self, redis: Redis, kind: str, machine: type[M], prefix: str = "etq") -> None:
        self.redis, self.kind, self.machine, self.prefix = redis, kind, machine, prefix
        self._owned: dict[str, M] = {}

    def _key(self, call_id: str) -> str:
        return f"{self.prefix}:{self.kind}:{call_id}"

    async def load(self, call_id: str) -> M | None:
        machine = self._owned.get(call_id)
        if machine is None:
            raw = await self.redis.get(self._key(call_id))
            if raw:
                machine = self._owned[call_id] = self.machine.from_dict(json.loads(raw))  # type: ignore[attr-defined]
        return machine

    async def save(self, machine: M) -> None:
        self._owned[machine.call_id] = machine
        await self.redis.set(self._key(machine.call_id), json.dumps(machine.to_dict()))

    def forget_owned(self) -> None:
        self._owned.clear()

    async def delete(self, call_id: str) -> None:
        self._owned.pop(call_id, None)
        await self.redis.delete(self._key(call_id))
