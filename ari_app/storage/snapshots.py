"""Redis persistence of one rule's machine per call: a snapshot saved after every step,
deleted when the rule is done (its history stays in the call's timeline), and expiring
`CALL_STATE_TTL` after its last write, so a call no process is left to end leaves nothing.
Its key carries the call's hash tag (`Keyspace.snapshot`).

A read cache keeps the snapshots this process wrote, so a step costs one Redis write and no
read; it is dropped on every (re)connect, when another process may have moved on.
"""

from __future__ import annotations

import json
from typing import Generic, Protocol, TypeVar

from redis.asyncio import Redis

from ari_app.storage.keyspace import CALL_STATE_TTL, Keyspace

__all__ = ["Fence", "SnapshotStore", "fenced_set", "fenced_delete"]


class Fence(Protocol):
    """The call's lease (calls/ownership.py): a write of a call this process holds a token of
    lands only while the token is still the call's, else LeaseLost and nothing is written."""

    def guards(self, call_id: str) -> bool: ...

    async def fenced_set(self, call_id: str, key: str, value: str | bytes,
                         ex: float | None = None) -> None: ...

    async def fenced_delete(self, call_id: str, *keys: str) -> int: ...


async def fenced_set(redis: Redis, fence: Fence | None, call_id: str, key: str,
                     value: str) -> None:
    """SET with the call state's ttl; fenced when this process holds the call's lease (a call
    nobody claimed, such as a callback call, is written plainly)."""
    if fence is not None and fence.guards(call_id):
        await fence.fenced_set(call_id, key, value, ex=CALL_STATE_TTL)
    else:
        await redis.set(key, value, ex=CALL_STATE_TTL)


async def fenced_delete(redis: Redis, fence: Fence | None, call_id: str, *keys: str) -> None:
    if fence is not None and fence.guards(call_id):
        await fence.fenced_delete(call_id, *keys)
    else:
        await redis.delete(*keys)


class Machine(Protocol):
    call_id: str

    def to_dict(self) -> dict: ...


M = TypeVar("M", bound=Machine)


class SnapshotStore(Generic[M]):
    def __init__(self, redis: Redis, kind: str, machine: type[M], *, keys: Keyspace,
                 fence: Fence | None = None) -> None:
        self.redis, self.kind, self.machine, self.keys = redis, kind, machine, keys
        self.fence = fence
        self._owned: dict[str, M] = {}
        self._written: dict[str, str] = {}         # the snapshot Redis holds, as we know it
        self._unsure: dict[str, str | None] = {}   # a failed write: what to put back first

    def _key(self, call_id: str) -> str:
        return self.keys.snapshot(self.kind, call_id)

    async def load(self, call_id: str) -> M | None:
        if call_id in self._unsure:
            return await self._restore(call_id)
        machine = self._owned.get(call_id)
        if machine is None:
            raw = await self.redis.get(self._key(call_id))
            if raw:
                self._written[call_id] = raw.decode() if isinstance(raw, bytes) else raw
                machine = self._owned[call_id] = self.machine.from_dict(json.loads(raw))  # type: ignore[attr-defined]
        return machine

    async def save(self, machine: M) -> None:
        """Write the snapshot, unless Redis already holds exactly this one (a step that
        changed nothing: a stale prompt end, an early timer) costs no Redis write."""
        snapshot = json.dumps(machine.to_dict())
        call_id = machine.call_id
        if call_id not in self._unsure and self._written.get(call_id) == snapshot:
            self._owned[call_id] = machine
            return
        try:
            await fenced_set(self.redis, self.fence, call_id, self._key(call_id), snapshot)
        except BaseException:
            self._unsure_after_failure(machine.call_id)
            raise
        self._owned[machine.call_id], self._written[machine.call_id] = machine, snapshot

    def _unsure_after_failure(self, call_id: str) -> None:
        """A write that failed may still land (a stopped Redis runs it when it resumes): the
        step's actions never ran, so the step is tried again from the snapshot before it,
        written back first (`_restore`), never from what may have landed."""
        self._owned.pop(call_id, None)
        self._unsure.setdefault(call_id, self._written.get(call_id))

    async def _restore(self, call_id: str) -> M | None:
        previous = self._unsure[call_id]
        if previous is None:
            await fenced_delete(self.redis, self.fence, call_id, self._key(call_id))
        else:
            await fenced_set(self.redis, self.fence, call_id, self._key(call_id), previous)
        del self._unsure[call_id]
        if previous is None:
            self._written.pop(call_id, None)
            return None
        self._written[call_id] = previous
        machine = self._owned[call_id] = self.machine.from_dict(json.loads(previous))  # type: ignore[attr-defined]
        return machine

    def cached(self, call_id: str) -> M | None:
        """The machine this process last loaded or saved, without a Redis read."""
        return self._owned.get(call_id)

    def forget(self, call_id: str) -> None:
        """Another instance drives the call now: nothing of it stays in memory."""
        self._owned.pop(call_id, None)
        self._written.pop(call_id, None)
        self._unsure.pop(call_id, None)

    def forget_owned(self) -> None:
        self._owned.clear()
        self._written.clear()

    async def delete(self, call_id: str) -> None:
        try:
            await fenced_delete(self.redis, self.fence, call_id, self._key(call_id))
        except BaseException:
            self._unsure_after_failure(call_id)
            raise
        self._owned.pop(call_id, None)
        self._written.pop(call_id, None)
