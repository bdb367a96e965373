"""A call's lane item that failed for storage is tried again from the snapshots as they were
before it (`rewind`), whatever its steps wrote or changed in memory meanwhile; once the item
is done (`settle`), what it wrote stays. Real Redis: a redis-server of the test's own."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from ari_app.storage import Keyspace
from ari_app.storage.snapshots import SnapshotStore

KEYS = Keyspace()


@dataclass
class Machine:
    """The least a store keeps: a call and a state, to and from JSON."""

    call_id: str
    state: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Machine":
        return cls(**data)


async def held(redis, call_id: str) -> str | None:
    raw = await redis.get(KEYS.snapshot("queue", call_id))
    return json.loads(raw)["state"] if raw else None


async def waiting_call(redis) -> SnapshotStore:
    """A store whose call is "waiting" in Redis, the item that wrote it done."""
    store = SnapshotStore(redis, "queue", Machine, keys=KEYS)
    await store.save(Machine("call-1", "waiting"))
    store.settle("call-1")
    return store


async def test_given_item_saved_twice_when_rewound_then_next_load_puts_back_the_state_before(
        redis):
    store = await waiting_call(redis)
    machine = await store.load("call-1")
    machine.state = "checking_in"
    await store.save(machine)
    machine.state = "told_position"
    await store.save(machine)

    store.rewind("call-1")  # the item's last action met storage away
    assert await held(redis, "call-1") == "told_position", "nothing is written till the retry"
    again = await store.load("call-1")
    assert again is not machine and again.state == "waiting"
    assert await held(redis, "call-1") == "waiting", "put back before the retry's steps"


async def test_given_machine_moved_without_a_write_when_rewound_then_loaded_as_before(redis):
    store = await waiting_call(redis)
    machine = await store.load("call-1")
    machine.state = "ended"  # an end state is not saved before its actions run
    store.rewind("call-1")
    await redis.set(KEYS.snapshot("queue", "call-1"), "not read again")
    assert (await store.load("call-1")).state == "waiting", "from memory: no Redis write, no read"


async def test_given_item_that_began_the_machine_when_rewound_then_nothing_is_left(redis):
    store = SnapshotStore(redis, "queue", Machine, keys=KEYS)
    await store.save(Machine("call-2", "entering"))
    store.rewind("call-2")
    assert await store.load("call-2") is None
    assert not await redis.exists(KEYS.snapshot("queue", "call-2"))


class RedisStops(SnapshotStore):
    """The next write fails as a stopped Redis' does."""

    fail_next = False

    async def _put(self, call_id: str, text: str | None) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RedisConnectionError("Connection refused")
        await super()._put(call_id, text)


async def test_given_failed_delete_after_a_save_when_rewound_then_the_state_before_is_back(redis):
    store = RedisStops(redis, "queue", Machine, keys=KEYS)
    await store.save(Machine("call-1", "waiting"))
    store.settle("call-1")
    machine = await store.load("call-1")
    machine.state = "leaving"
    await store.save(machine)
    store.fail_next = True
    with pytest.raises(RedisConnectionError):
        await store.delete("call-1")

    store.rewind("call-1")
    assert (await store.load("call-1")).state == "waiting", "not the step's 'leaving'"
    assert await held(redis, "call-1") == "waiting"


async def test_given_item_settled_when_rewound_later_then_what_it_wrote_stays(redis):
    store = await waiting_call(redis)
    machine = await store.load("call-1")
    machine.state = "checking_in"
    await store.save(machine)
    store.settle("call-1")

    store.rewind("call-1")  # a later item that failed before touching the call
    assert (await store.load("call-1")).state == "checking_in"
    assert await held(redis, "call-1") == "checking_in"
