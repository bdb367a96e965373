"""Rule snapshots and the inbound call's state, written fenced once this process holds the
call's lease: an instance that lost the call (paused past its lease, then woken) writes
nothing, and the step's actions never run; a call nobody claimed is written plainly."""

from __future__ import annotations

import json

import pytest

from ari_app.calls.ownership import CallOwnership, LeaseLost
from ari_app.storage import Keyspace
from ari_app.storage.snapshots import SnapshotStore

KEYS = Keyspace()


class Machine:
    def __init__(self, call_id: str, state: str) -> None:
        self.call_id, self.state = call_id, state

    def to_dict(self) -> dict:
        return {"call_id": self.call_id, "state": self.state}

    @classmethod
    def from_dict(cls, d: dict) -> "Machine":
        return cls(d["call_id"], d["state"])


async def test_given_call_taken_over_when_stale_store_saves_then_nothing_written(redis):
    a, b = CallOwnership(redis, "app-a", keys=KEYS), CallOwnership(redis, "app-b", keys=KEYS)
    stale = SnapshotStore(redis, "hold", Machine, keys=KEYS, fence=a)
    fresh = SnapshotStore(redis, "hold", Machine, keys=KEYS, fence=b)
    await a.claim("call-1")
    await stale.save(Machine("call-1", "waiting"))
    await b.claim("call-1", take=True)
    await fresh.save(Machine("call-1", "checking_in"))
    with pytest.raises(LeaseLost):
        await stale.save(Machine("call-1", "stale check-in"))
    with pytest.raises(LeaseLost):
        await stale.delete("call-1")
    raw = await redis.get(KEYS.snapshot("hold", "call-1"))
    assert json.loads(raw)["state"] == "checking_in"
    assert 0 < await redis.ttl(KEYS.snapshot("hold", "call-1"))


async def test_given_call_nobody_claimed_when_saved_then_written_plainly(redis):
    store = SnapshotStore(redis, "callback-call", Machine, keys=KEYS,
                          fence=CallOwnership(redis, "app-a", keys=KEYS))
    await store.save(Machine("cb-1", "dialing"))
    assert await redis.exists(KEYS.snapshot("callback-call", "cb-1"))
    await store.delete("cb-1")
    assert not await redis.exists(KEYS.snapshot("callback-call", "cb-1"))
