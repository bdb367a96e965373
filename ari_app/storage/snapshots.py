"""Redis persistence of one rule's machine per call: a snapshot saved after every step,
deleted when the rule is done (its history stays in the call's timeline), and expiring
`CALL_STATE_TTL` after its last write, so a call no process is left to end leaves nothing.
Its key carries the call's hash tag (`Keyspace.snapshot`).

A read cache keeps the snapshots this process wrote, so a step costs one Redis write and no
read; it is dropped on every (re)connect, when another process may have moved on.

`SnapshotMemory` is that logic once, for the rules' stores here and the inbound call's own
(inbound/store.py): the cache, and what to put back after a write failed or an event was cut
short by storage going away.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

import orjson
from redis.asyncio import Redis

from ari_app.storage.keyspace import CALL_STATE_TTL, Keyspace

__all__ = ["Fence", "SnapshotMemory", "SnapshotStore", "fenced_set", "fenced_delete"]

# a snapshot is written at each step of each call: orjson takes a sixth of json's time; a machine's
# int keys become text, as json.dumps made them
_KEYS_AS_TEXT = orjson.OPT_NON_STR_KEYS


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


class SnapshotMemory(Generic[M]):
    """A call's snapshot in Redis, and what this process knows of it and must put back.

    A call's lane item (one event) may take several steps, each saving its snapshot before
    carrying out its actions. Should storage fail part way (a write, or an action's own Redis
    work), the lane tries the item again, and it must start from the snapshots as they were
    before it: a step already saved means nothing more to the retry, and its actions not yet
    carried out (a check-in's prompt, the talk bridge's end) would be lost. So the first load
    or write of a call in an item remembers what Redis held (`_before`), `rewind` has the next
    load put it back, and `settle` forgets it once the item is done.

    A store names its key (`_key`), reads its machine (`_decode`) and writes it (`_put`)."""

    redis: Redis

    def __init__(self) -> None:
        self._owned: dict[str, M] = {}
        self._written: dict[str, str] = {}         # the snapshot Redis holds, as we know it
        self._unsure: dict[str, str | None] = {}   # a failed write: what to put back first
        self._before: dict[str, str | None] = {}   # what Redis held when the lane item began

    def _key(self, call_id: str) -> str:
        raise NotImplementedError

    def _decode(self, text: str) -> M:
        raise NotImplementedError

    async def _put(self, call_id: str, text: str | None) -> None:
        """Write the snapshot (None: delete it)."""
        raise NotImplementedError

    async def load(self, call_id: str) -> M | None:
        if call_id in self._unsure:
            self._touched(call_id)
            return await self._restore(call_id)
        machine = self._owned.get(call_id)
        if machine is None:
            raw = await self.redis.get(self._key(call_id))
            if raw:
                text = raw.decode() if isinstance(raw, bytes) else raw
                self._written[call_id] = text
                machine = self._owned[call_id] = self._decode(text)
        self._touched(call_id)
        return machine

    async def save(self, machine: M) -> None:
        """Write the snapshot, unless Redis already holds exactly this one (a step that
        changed nothing: a stale prompt end, an early timer) costs no Redis write."""
        text = orjson.dumps(machine.to_dict(), option=_KEYS_AS_TEXT).decode()
        call_id = machine.call_id
        if call_id not in self._unsure and self._written.get(call_id) == text:
            self._owned[call_id] = machine
            return
        await self._write(call_id, machine, text)

    async def delete(self, call_id: str) -> None:
        await self._write(call_id, None, None)

    async def _write(self, call_id: str, machine: M | None, text: str | None) -> None:
        self._touched(call_id)
        try:
            await self._put(call_id, text)
        except BaseException:
            self._unsure_after_failure(call_id)
            raise
        self._wrote(call_id, machine, text)

    def _touched(self, call_id: str) -> None:
        """The item's first load or write of the call: what Redis held before it."""
        if call_id not in self._before:
            self._before[call_id] = (self._unsure[call_id] if call_id in self._unsure
                                     else self._written.get(call_id))

    def _unsure_after_failure(self, call_id: str) -> None:
        """A write that failed may still land (a stopped Redis runs it when it resumes): the
        step's actions never ran, so the step is tried again from the snapshot before it,
        written back first (`_restore`), never from what may have landed."""
        self._owned.pop(call_id, None)
        self._unsure.setdefault(call_id, self._written.get(call_id))

    async def _restore(self, call_id: str) -> M | None:
        previous = self._unsure[call_id]
        await self._put(call_id, previous)
        machine = None if previous is None else self._decode(previous)
        self._wrote(call_id, machine, previous)
        return machine

    def _wrote(self, call_id: str, machine: M | None, text: str | None) -> None:
        self._unsure.pop(call_id, None)  # Redis holds what we wrote: nothing to put back
        if machine is None or text is None:
            self._owned.pop(call_id, None)
            self._written.pop(call_id, None)
        else:
            self._owned[call_id], self._written[call_id] = machine, text

    def rewind(self, call_id: str) -> None:
        """The lane item failed for storage: its retry starts from the snapshot before it,
        written back first when the item wrote anything since (the machine in memory may
        have moved on even where nothing was written: an end state is not saved). A call
        the item never loaded nor wrote here keeps its machine in memory."""
        if call_id not in self._before:
            return
        self._owned.pop(call_id, None)
        before = self._before.pop(call_id)
        if call_id in self._unsure or self._written.get(call_id) != before:
            self._unsure[call_id] = before
        elif before is not None:
            self._owned[call_id] = self._decode(before)

    def settle(self, call_id: str) -> None:
        """The lane item is done (or dropped as a bug): nothing of it is put back."""
        self._before.pop(call_id, None)

    def cached(self, call_id: str) -> M | None:
        """The machine this process last loaded or saved, without a Redis read."""
        return self._owned.get(call_id)

    def forget(self, call_id: str) -> None:
        """Another instance drives the call now: nothing of it stays in memory."""
        self._owned.pop(call_id, None)
        self._written.pop(call_id, None)
        self._unsure.pop(call_id, None)
        self._before.pop(call_id, None)

    def forget_owned(self) -> None:
        """After a reconnect, read everything from Redis again."""
        self._owned.clear()
        self._written.clear()


class SnapshotStore(SnapshotMemory[M]):
    """One rule's machine per call."""

    def __init__(self, redis: Redis, kind: str, machine: type[M], *, keys: Keyspace,
                 fence: Fence | None = None) -> None:
        super().__init__()
        self.redis, self.kind, self.machine, self.keys = redis, kind, machine, keys
        self.fence = fence

    def _key(self, call_id: str) -> str:
        return self.keys.snapshot(self.kind, call_id)

    def _decode(self, text: str) -> M:
        return self.machine.from_dict(orjson.loads(text))  # type: ignore[attr-defined]

    async def _put(self, call_id: str, text: str | None) -> None:
        if text is None:
            await fenced_delete(self.redis, self.fence, call_id, self._key(call_id))
        else:
            await fenced_set(self.redis, self.fence, call_id, self._key(call_id), text)
