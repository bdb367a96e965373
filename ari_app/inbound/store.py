"""Redis persistence of inbound calls: the machine snapshot per call and the set of live calls;
the call's etiquette timeline is read from the etiquette log (calls/etiquette_log.py), which
writes it from the call events."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from ari_app.inbound.machine import InboundMachine
from ari_app.calls.etiquette_log import EtiquetteLog
from ari_app.storage.keyspace import CALL_STATE_TTL, Keyspace
from ari_app.storage.reads import get_each
from ari_app.storage.snapshots import Fence

__all__ = ["CallStore"]


class CallStore:
    """Redis is the truth; reads come from memory while this process owns the call (its
    events reach only this process), so a call's event costs no Redis read."""

    def __init__(self, redis: Redis, log: EtiquetteLog, *, keys: Keyspace) -> None:
        self.redis, self.keys = redis, keys
        self._owned: dict[str, InboundMachine] = {}
        self._written: dict[str, str] = {}         # the snapshot Redis holds, as we know it
        self._unsure: dict[str, str | None] = {}   # a failed write: what to put back first
        self.live_key = keys.live_calls()
        self.log = log
        self.fence: Fence | None = None  # the call leases, when several instances share calls

    def _call_key(self, call_id: str) -> str:
        return self.keys.call(call_id)

    async def load(self, call_id: str) -> InboundMachine | None:
        if call_id in self._unsure:
            return await self._restore(call_id)
        machine = self._owned.get(call_id)
        if machine is None:
            raw = await self.redis.get(self._call_key(call_id))
            if raw:
                self._written[call_id] = raw.decode() if isinstance(raw, bytes) else raw
                machine = self._owned[call_id] = InboundMachine.from_dict(json.loads(raw))
        return machine

    async def save(self, machine: InboundMachine) -> None:
        """Write the call's snapshot, unless Redis already holds exactly this one."""
        text = json.dumps(machine.to_dict())
        if machine.call_id not in self._unsure and self._written.get(machine.call_id) == text:
            self._owned[machine.call_id] = machine
            return
        try:
            await self._put(machine.call_id, text)
        except BaseException:
            self._unsure_after_failure(machine.call_id)
            raise
        self._owned[machine.call_id], self._written[machine.call_id] = machine, text

    async def _put(self, call_id: str, text: str | None) -> None:
        if self.fence is not None and self.fence.guards(call_id):
            # the call's key only while our lease's token is the call's (LeaseLost otherwise:
            # nothing written), then the live set (another slot: not in the same script)
            if text is None:
                await self.fence.fenced_delete(call_id, self._call_key(call_id))
                await self.redis.srem(self.live_key, call_id)
            else:
                await self.fence.fenced_set(call_id, self._call_key(call_id), text,
                                            ex=CALL_STATE_TTL)
                await self.redis.sadd(self.live_key, call_id)
            return
        # one round trip, not one transaction: the live set and the call's key are in
        # different Cluster slots; a write that half failed is put right by `_restore`
        async with self.redis.pipeline(transaction=False) as pipe:
            if text is None:
                pipe.delete(self._call_key(call_id))
                pipe.srem(self.live_key, call_id)
            else:
                pipe.set(self._call_key(call_id), text, ex=CALL_STATE_TTL)
                pipe.sadd(self.live_key, call_id)
            await pipe.execute()

    def _unsure_after_failure(self, call_id: str) -> None:
        """A failed write may still land (a stopped Redis runs it when it resumes) though the
        step's actions never ran: the step is tried again from the snapshot before it, put
        back first (`_restore`), never from what may have landed."""
        self._owned.pop(call_id, None)
        self._unsure.setdefault(call_id, self._written.get(call_id))

    async def _restore(self, call_id: str) -> InboundMachine | None:
        previous = self._unsure[call_id]
        await self._put(call_id, previous)
        del self._unsure[call_id]
        if previous is None:
            self._written.pop(call_id, None)
            return None
        self._written[call_id] = previous
        machine = self._owned[call_id] = InboundMachine.from_dict(json.loads(previous))
        return machine

    def forget(self, call_id: str) -> None:
        """Another instance drives the call now: nothing of it stays in memory."""
        self._owned.pop(call_id, None)
        self._written.pop(call_id, None)
        self._unsure.pop(call_id, None)

    def forget_owned(self) -> None:
        """After a reconnect, read everything from Redis again."""
        self._owned.clear()
        self._written.clear()

    async def delete(self, call_id: str) -> None:
        try:
            await self._put(call_id, None)
        except BaseException:
            self._unsure_after_failure(call_id)
            raise
        self._owned.pop(call_id, None)
        self._written.pop(call_id, None)

    async def peek(self, call_ids: list[str]) -> list[InboundMachine | None]:
        """For readers (the operator console): the calls this process drives from memory,
        the others from Redis in one round trip, never cached (another process moves them)."""
        missing = [c for c in call_ids if c not in self._owned or c in self._unsure]
        raws: list = []
        if missing:
            raws = await get_each(self.redis, [self._call_key(c) for c in missing])
        read = {c: InboundMachine.from_dict(json.loads(raw)) for c, raw in zip(missing, raws)
                if raw}
        return [read.get(c) if c in read or c in missing else self._owned.get(c)
                for c in call_ids]

    async def live_calls(self) -> list[str]:
        return sorted(m.decode() if isinstance(m, bytes) else m
                      for m in await self.redis.smembers(self.live_key))

    async def timeline(self, call_id: str) -> list[dict]:
        """The call's etiquette log, with everything published so far written."""
        return await self.log.read(call_id)
