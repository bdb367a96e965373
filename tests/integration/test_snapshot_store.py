"""A step whose snapshot write failed is tried again from the snapshot before it, even when the
failed write still landed (a stopped Redis runs it when it resumes, after the client gave up):
otherwise the retry finds a state whose actions never ran, and a held caller's check-ins never
came back. Real Redis; the fault is a write that lands and then reports a timeout."""

from __future__ import annotations

import json

import pytest
from redis.exceptions import TimeoutError as RedisTimeout

from ari_app.hold import machine as h
from ari_app.hold.store import HoldStore
from ari_app.inbound.machine import InboundMachine
from ari_app.inbound.store import CallStore
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration


class LandsThenTimesOut:
    """The sandbox's Redis, but the next write lands and then reports a timeout."""

    def __init__(self, redis) -> None:
        self._redis, self.fail_next = redis, False

    def __getattr__(self, name):
        return getattr(self._redis, name)

    async def set(self, *args, **kwargs):
        result = await self._redis.set(*args, **kwargs)
        if self.fail_next:
            self.fail_next = False
            raise RedisTimeout("Timeout reading from redis")
        return result

    def pipeline(self, *args, **kwargs):
        pipe = self._redis.pipeline(*args, **kwargs)
        execute, outer = pipe.execute, self

        async def execute_then_fail(*a, **k):
            result = await execute(*a, **k)
            if outer.fail_next:
                outer.fail_next = False
                raise RedisTimeout("Timeout reading from redis")
            return result

        pipe.execute = execute_then_fail
        return pipe


async def test_given_write_that_landed_but_timed_out_when_retried_then_step_runs_again(redis):
    faulty = LandsThenTimesOut(redis)
    store = HoldStore(faulty, keys=KEYS)
    machine = h.HoldMachine("call-1", settings=h.HoldSettings(check_in_interval=2))
    machine.handle(h.HoldRequested(0.0, "lookup"))
    await store.save(machine)                                   # announcing, saved
    machine.handle(h.PromptFinished(3.0, "hold-intro", machine.playing_tag))
    await store.save(machine)                                   # holding, saved
    holding = json.loads(await redis.get(KEYS.snapshot("hold", "call-1")))

    actions = machine.handle(h.TimerFired(5.0))                 # the check-in is due
    assert any(isinstance(a, h.Play) for a in actions)
    faulty.fail_next = True
    with pytest.raises(RedisTimeout):
        await store.save(machine)
    assert json.loads(await redis.get(KEYS.snapshot("hold", "call-1")))["state"] == "checking_in", \
        "the failed write landed (the case to cover)"

    retried = await store.load("call-1")                        # the lane's retry
    assert json.loads(json.dumps(retried.to_dict())) == holding
    assert json.loads(await redis.get(KEYS.snapshot("hold", "call-1"))) == holding, "put back first"
    again = retried.handle(h.TimerFired(5.0))
    assert [a.prompt for a in again if isinstance(a, h.Play)] == ["checkin-1"], \
        "the check-in plays on the retry"
    await store.save(retried)
    await store.delete("call-1")


async def test_given_first_write_that_landed_but_timed_out_when_retried_then_nothing_is_left(redis):
    faulty = LandsThenTimesOut(redis)
    store = CallStore(faulty, log=None, keys=KEYS)
    machine = InboundMachine("call-2")
    faulty.fail_next = True
    with pytest.raises(RedisTimeout):
        await store.save(machine)
    assert await redis.exists(KEYS.call("call-2"))
    assert await store.load("call-2") is None, "no snapshot before the step: none after"
    assert not await redis.exists(KEYS.call("call-2"))
    assert not await redis.sismember(KEYS.live_calls(), "call-2")
