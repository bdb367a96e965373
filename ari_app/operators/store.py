"""Redis persistence of the operators' machines: one JSON value per operator
(`Keyspace.operator_state`), without expiry, so a state outlives a restart and every instance
reads the same. A change is read, applied and written under WATCH: two instances changing one
operator at once never lose one of the changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import WatchError

from ari_app.calls.vocabulary import Note
from ari_app.operators.machine import OperatorMachine, OperatorState
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.reads import get_each

__all__ = ["OperatorStore"]


class OperatorStore:
    def __init__(self, redis: Redis, *, keys: Keyspace, login_required: bool) -> None:
        self.redis, self.keys, self.login_required = redis, keys, login_required

    def _machine(self, endpoint: str, raw: bytes | str | None) -> OperatorMachine:
        if not raw:
            return OperatorMachine.fresh(endpoint, self.login_required)
        return OperatorMachine.from_dict({**json.loads(raw), "endpoint": endpoint})

    async def load_many(self, endpoints: Sequence[str]) -> list[OperatorMachine]:
        """Pipelined reads (storage/reads.py)."""
        raws = await get_each(self.redis, [self.keys.operator_state(e) for e in endpoints])
        return [self._machine(e, raw) for e, raw in zip(endpoints, raws)]

    async def change(self, endpoint: str, event: object
                     ) -> tuple[OperatorState, OperatorMachine, list[Note]]:
        """Apply `event`: the state before, the machine after, its notes. A change that
        changes nothing writes nothing; InvalidTransition leaves Redis as it was."""
        key = self.keys.operator_state(endpoint)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    machine = self._machine(endpoint, await pipe.get(key))
                    old = machine.state
                    notes = machine.handle(event)
                    if not notes:
                        await pipe.unwatch()
                        return old, machine, notes
                    pipe.multi()
                    pipe.set(key, json.dumps(machine.to_dict()))
                    await pipe.execute()
                    return old, machine, notes
                except WatchError:
                    continue  # another instance changed them first: apply to theirs
