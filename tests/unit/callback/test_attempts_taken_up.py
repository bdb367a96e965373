"""Who drives a callback attempt after the process that dialled it is gone: the holder of the
app its legs were dialled into, on that node, and nobody else.

A pool survivor that takes over a dead instance's app name hears that app's legs; the dead
instance's own attempts would otherwise keep their operator and their request's lock until
the lock's lease ran out. An instance on another app (or another node's app of the same name)
must leave them alone: it would be a second driver of a live process's attempt. The taker
fences the process before it off (each attempt's lease, calls/ownership.py). Real Redis;
Asterisk's side is what it answers.
"""

from __future__ import annotations

import asyncio
import time

from ari_app.callback import machine as k
from ari_app.callback.machine import CallbackCallMachine, CallbackCallState
from ari_app.callback.stasis import CallbackStasis
from ari_app.calls.events import CallEvents
from ari_app.calls.ownership import CallOwnership
from ari_app.storage import Keyspace
from ari_app.storage.snapshots import SnapshotStore

KEYS = Keyspace()


class Asterisk:
    """The channels Asterisk has, and what the adapter asked of it."""

    def __init__(self, channels: list[str]) -> None:
        self.channels, self.hung_up, self.dialled, self.played = channels, [], [], []

    async def call(self, operation, **params):
        return [{"id": c} for c in self.channels]

    async def hangup(self, channel: str) -> None:
        self.hung_up.append(channel)

    async def destroy_bridge(self, bridge: str) -> None:
        pass

    async def originate(self, endpoint: str, **params) -> None:
        self.dialled.append(params["channel_id"])

    async def play(self, channel: str, media, playback_id: str, **params) -> None:
        self.played.append(channel)


def talking(call: str, app: str, node: str = "") -> CallbackCallMachine:
    return CallbackCallMachine(call, request_id=f"req-{call}", number="+12125550100",
                               operator="PJSIP/op1", app=app, node=node,
                               state=CallbackCallState.CONNECTED, up=[k.OPERATOR, k.CUSTOMER])


def stasis(redis, asterisk: Asterisk, *, app: str, node: str | None = None,
           ownership: CallOwnership | None = None, events: CallEvents | None = None):
    adopted, finished = [], []

    async def on_adopted(machine):
        adopted.append(machine.call_id)

    async def on_finished(machine, finish):
        finished.append((machine.call_id, finish.outcome))

    events = events or CallEvents()
    store = SnapshotStore(redis, "callback-call", CallbackCallMachine, keys=Keyspace(),
                          fence=ownership)
    calls = CallbackStasis(asterisk, store, events, app=app, dial_template="Local/{number}",
                           ring_timeout=25, operator_ring_timeout=15, company_id='"X"',
                           on_finished=on_finished, on_adopted=on_adopted, node=node,
                           ownership=ownership)
    return calls, adopted, finished


async def given_in_redis(redis, *machines: CallbackCallMachine) -> None:
    """Attempts under way, as the process that started them left them."""
    store = SnapshotStore(redis, "callback-call", CallbackCallMachine, keys=Keyspace())
    for machine in machines:
        await redis.zadd(KEYS.callback_attempts(), {machine.call_id: time.time()})
        await store.save(machine)


async def test_given_a_dead_instances_app_taken_over_then_only_its_attempts_on_this_node_are_taken_up(
        redis):
    await given_in_redis(redis, talking("cb-dead1", "pool-1"), talking("cb-live1", "pool-2"),
                         talking("cb-nodeb1", "pool-1", node="b"))
    asterisk = Asterisk(["cb-dead1~op", "cb-dead1~cust", "cb-live1~op", "cb-live1~cust",
                         "cb-nodeb1~op", "cb-nodeb1~cust"])
    survivor, adopted, finished = stasis(redis, asterisk, app="pool-3")

    await survivor.reconcile(adopt="pool-1")
    await survivor.lanes.join()

    assert adopted == ["cb-dead1"]  # not pool-2's (alive), not node b's pool-1
    assert survivor.attempts == {"cb-dead1": "pool-1"}
    assert asterisk.hung_up == [] and finished == []  # both its legs are up: it goes on
    await survivor.close()


async def test_given_a_leg_gone_while_nobody_held_the_app_then_the_taker_ends_the_attempt(redis):
    await given_in_redis(redis, talking("cb-dead1", "pool-1"))
    asterisk = Asterisk(["cb-dead1~op"])  # the customer hung up before the takeover
    survivor, adopted, finished = stasis(redis, asterisk, app="pool-2",
                                         ownership=CallOwnership(redis, "b", keys=KEYS))

    await survivor.reconcile(adopt="pool-1")
    await survivor.lanes.join()

    assert adopted == ["cb-dead1"]
    assert asterisk.hung_up == ["cb-dead1~op"]
    assert finished == [("cb-dead1", "connected")]  # they talked: the request is done
    assert survivor.attempts == {}
    assert not await redis.exists(KEYS.snapshot("callback-call", "cb-dead1"),
                                  KEYS.lease("cb-dead1"), KEYS.fencing_counter("cb-dead1"))
    await survivor.close()


async def test_given_an_attempt_ended_or_never_written_then_it_leaves_the_index(redis):
    """An attempt's end takes it out of the index; an entry whose process died before its
    first snapshot goes after a while (a fresh one may be another process's just started)."""
    await given_in_redis(redis, talking("cb-dead1", "pool-1"))
    await redis.zadd(KEYS.callback_attempts(), {"cb-early1": time.time() - 3600,
                                                "cb-fresh1": time.time()})
    asterisk = Asterisk(["cb-dead1~op"])  # the customer gone: the attempt ends
    survivor, _, finished = stasis(redis, asterisk, app="pool-2")

    await survivor.reconcile(adopt="pool-1")
    await survivor.lanes.join()

    assert finished == [("cb-dead1", "connected")]
    assert await redis.zrange(KEYS.callback_attempts(), 0, -1) == [b"cb-fresh1"]
    await survivor.close()


async def test_given_the_app_let_go_then_its_attempts_are_not_timed_or_kept_here(redis):
    machine = talking("cb-dead1", "pool-1")
    machine.deadline = 1e12
    await given_in_redis(redis, machine)
    asterisk = Asterisk(["cb-dead1~op", "cb-dead1~cust"])
    survivor, adopted, _ = stasis(redis, asterisk, app="pool-2")
    await survivor.reconcile(adopt="pool-1")
    assert survivor.pending_timers == 1

    survivor.let_go("pool-1")
    await survivor.reconcile()  # a reconnect of its own app: nothing of pool-1's

    assert survivor.attempts == {} and survivor.pending_timers == 0
    assert survivor.store.cached("cb-dead1") is None
    assert adopted == ["cb-dead1"]
    await survivor.close()


async def test_given_its_app_no_longer_held_when_a_timer_falls_due_then_nothing_is_done(redis):
    """A process paused past its app's lease wakes to timers already due; its next round
    finds the lease gone, but until then it must not act on an attempt another drives."""
    machine = CallbackCallMachine("cb-ring1", request_id="req-1", number="+12125550100",
                                  operator="PJSIP/op1", app="pool-1", ringing=[k.OPERATOR],
                                  deadline=1.0)  # its ring guard long past
    await given_in_redis(redis, machine)
    asterisk = Asterisk([])
    paused, _, finished = stasis(redis, asterisk, app="pool-1")
    held = [False]
    paused.holds = lambda app: held[0]

    paused.lanes.submit("cb-ring1", "tick")
    await paused.lanes.join()
    assert asterisk.hung_up == [] and finished == []

    held[0] = True  # the holder of pool-1, by contrast, hangs the lost leg up
    paused.lanes.submit("cb-ring1", "tick")
    await paused.lanes.join()
    assert asterisk.hung_up == ["cb-ring1~op"]
    assert finished == [("cb-ring1", "operator-unavailable")]
    await paused.close()


async def test_given_an_attempt_just_started_when_a_reconnect_reconciles_then_it_stays_ours(redis):
    """Its first step (and snapshot) is still queued in its lane when another app's takeover
    reconciles: it is not taken for an attempt that ended."""
    asterisk = Asterisk([])
    calls, _, _ = stasis(redis, asterisk, app="pool-1")
    gate = asyncio.Event()
    handle = calls._handle

    async def slow_first_step(call_id, item):
        await gate.wait()
        await handle(call_id, item)
    calls.lanes._handler = slow_first_step  # the lane's first step held up till the gate
    machine = CallbackCallMachine("cb-new1", request_id="req-1", number="+12125550100",
                                  operator="PJSIP/op1")
    asterisk.originate = _noop

    await calls.start(machine, k.Started(time.time()))
    await calls.reconcile(adopt="pool-2")
    gate.set()
    await calls.lanes.join()

    assert calls.attempts == {"cb-new1": "pool-1"}
    assert calls.pending_timers == 1  # its operator's ring guard
    await calls.close()


async def test_given_a_process_paused_mid_attempt_when_it_resumes_after_the_takeover_then_it_writes_and_does_nothing(
        redis):
    """Paused (a long GC, a stopped VM) past its app's lease while the operator's phone rang:
    the survivor took the attempt up. The paused process resumes with the operator's answer in
    hand and its app still held as far as it knows: its step is refused by the attempt's
    lease, so it neither overwrites the survivor's snapshot nor dials the customer."""
    asterisk = Asterisk([])
    paused, _, _ = stasis(redis, asterisk, app="pool-1",
                          ownership=CallOwnership(redis, "a", keys=KEYS))
    await paused.start(CallbackCallMachine("cb-new1", request_id="req-1", number="+12125550100",
                                           operator="PJSIP/op1"), k.Started(time.time()))
    await paused.lanes.join()
    assert asterisk.dialled == ["cb-new1~op"]
    survivor, adopted, _ = stasis(redis, asterisk, app="pool-2",
                                  ownership=CallOwnership(redis, "b", keys=KEYS))
    await survivor.reconcile(adopt="pool-1")
    assert adopted == ["cb-new1"]
    taken = await redis.get(KEYS.snapshot("callback-call", "cb-new1"))

    paused.on_event({"type": "StasisStart", "channel": {"id": "cb-new1~op"}})
    await paused.lanes.join()

    assert asterisk.dialled == ["cb-new1~op"] and asterisk.played == []  # nothing more done
    assert await redis.get(KEYS.snapshot("callback-call", "cb-new1")) == taken
    assert paused.attempts == {} and paused.pending_timers == 0
    assert (await redis.get(KEYS.lease("cb-new1"))).startswith(b"b:")
    survivor.on_event({"type": "StasisStart", "channel": {"id": "cb-new1~op"}})
    await survivor.lanes.join()  # the survivor's own step goes through
    assert await redis.get(KEYS.snapshot("callback-call", "cb-new1")) != taken
    await paused.close()
    await survivor.close()


async def test_given_an_attempt_a_version_before_the_index_left_when_its_app_is_taken_then_it_is_taken_up(
        redis):
    """An upgrade while an attempt was under way: its snapshot is in Redis, the index (a later
    version's) does not name it. The first take-up lists it, once per Redis."""
    store = SnapshotStore(redis, "callback-call", CallbackCallMachine, keys=Keyspace())
    await store.save(talking("cb-old1", "pool-1"))  # no index entry
    asterisk = Asterisk(["cb-old1~op", "cb-old1~cust"])
    survivor, adopted, _ = stasis(redis, asterisk, app="pool-2")

    await survivor.reconcile(adopt="pool-1")

    assert adopted == ["cb-old1"] and survivor.attempts == {"cb-old1": "pool-1"}
    assert await redis.zrange(KEYS.callback_attempts(), 0, -1) == [b"cb-old1"]
    await store.save(talking("cb-old2", "pool-3"))
    await survivor.reconcile(adopt="pool-3")
    assert adopted == ["cb-old1"]  # listed once: a later version's attempts are all indexed
    await survivor.close()


async def test_given_a_process_paused_mid_attempt_when_it_resumes_with_its_end_then_it_ends_nothing(
        redis):
    """The paused process resumes with the customer's hang-up in hand, after the survivor took
    the attempt up: it hangs nobody up and tells its dialer nothing (the survivor does)."""
    await given_in_redis(redis, talking("cb-end1", "pool-1"))
    asterisk = Asterisk(["cb-end1~op", "cb-end1~cust"])
    paused, _, paused_finished = stasis(redis, asterisk, app="pool-1",
                                        ownership=CallOwnership(redis, "a", keys=KEYS))
    await paused.reconcile(adopt="pool-1")
    survivor, adopted, _ = stasis(redis, asterisk, app="pool-2",
                                  ownership=CallOwnership(redis, "b", keys=KEYS))
    await survivor.reconcile(adopt="pool-1")
    assert adopted == ["cb-end1"]

    paused.on_event({"type": "StasisEnd", "channel": {"id": "cb-end1~cust"}})
    await paused.lanes.join()

    assert asterisk.hung_up == [] and paused_finished == []
    assert paused.attempts == {}
    assert await redis.exists(KEYS.snapshot("callback-call", "cb-end1"))  # the survivor's
    await paused.close()
    await survivor.close()


async def _noop(*args, **kwargs):
    return None
