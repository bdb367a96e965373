"""Redis persistence of inbound calls: the machine snapshot per call and the set of live calls;
the call's etiquette timeline is read from the etiquette log (calls/etiquette_log.py), which
writes it from the call events."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from ari_app.inbound.machine import InboundMachine
from ari_app.calls.etiquette_log import EtiquetteLog
from ari_app.storage.keyspace import CALL_STATE_TTL, Keyspace
from ari_app.storage.reads import get_each
from ari_app.storage.snapshots import Fence, SnapshotMemory

__all__ = ["CallStore"]


class CallStore(SnapshotMemory[InboundMachine]):
    """Redis is the truth; reads come from memory while this process owns the call (its
    events reach only this process), so a call's event costs no Redis read."""

    def __init__(self, redis: Redis, log: EtiquetteLog, *, keys: Keyspace) -> None:
        super().__init__()
        self.redis, self.keys = redis, keys
        self.live_key = keys.live_calls()
        self.log = log
        self.fence: Fence | None = None  # the call leases, when several instances share calls

    def _key(self, call_id: str) -> str:
        return self.keys.call(call_id)

    def _decode(self, text: str) -> InboundMachine:
        return InboundMachine.from_dict(orjson.loads(text))

    async def _put(self, call_id: str, text: str | None) -> None:
        if self.fence is not None and self.fence.guards(call_id):
            # the call's key only while our lease's token is the call's (LeaseLost otherwise:
            # nothing written), then the live set (another slot: not in the same script)
            if text is None:
                await self.fence.fenced_delete(call_id, self._key(call_id))
                await self.redis.srem(self.live_key, call_id)
            else:
                await self.fence.fenced_set(call_id, self._key(call_id), text,
                                            ex=CALL_STATE_TTL)
                await self.redis.sadd(self.live_key, call_id)
            return
        # one round trip, not one transaction: the live set and the call's key are in
        # different Cluster slots; a write that half failed is put right by `_restore`
        async with self.redis.pipeline(transaction=False) as pipe:
            if text is None:
                pipe.delete(self._key(call_id))
                pipe.srem(self.live_key, call_id)
            else:
                pipe.set(self._key(call_id), text, ex=CALL_STATE_TTL)
                pipe.sadd(self.live_key, call_id)
            await pipe.execute()

    async def peek(self, call_ids: list[str]) -> list[InboundMachine | None]:
        """For readers (the operator console): the calls this process drives from memory,
        the others from Redis in one round trip, never cached (another process moves them)."""
        missing = [c for c in call_ids if c not in self._owned or c in self._unsure]
        raws: list = []
        if missing:
            raws = await get_each(self.redis, [self._key(c) for c in missing])
        read = {c: InboundMachine.from_dict(orjson.loads(raw)) for c, raw in zip(missing, raws)
                if raw}
        return [read.get(c) if c in read or c in missing else self._owned.get(c)
                for c in call_ids]

    async def live_calls(self) -> list[str]:
        return sorted(m.decode() if isinstance(m, bytes) else m
                      for m in await self.redis.smembers(self.live_key))

    async def timeline(self, call_id: str) -> list[dict]:
        """The call's etiquette log, with everything published so far written."""
        return await self.log.read(call_id)
