"""An attempt's end survives storage failing in the middle of it.

Its snapshot goes only once the end is carried out (the other leg hung up, the dialer told,
the operator freed): should Redis go away meanwhile, the step is tried again from the snapshot
before it, and the dialer, told twice, changes its request once. Before, the snapshot went
first and a try again found nothing: the request stayed locked, its operator kept, till the
lock's lease ran out. Real Redis; the dialer in memory (dialer_fakes.py).
"""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError

from ari_app.callback import machine as k
from ari_app.callback.service import CallbackRequest
from ari_app.calls.events import CallEvents
from ari_app.calls.ownership import CallOwnership
from ari_app.customers.service import Customers
from ari_app.storage import Keyspace
from dialer_fakes import DialerFakes, dialer
from test_attempts_taken_up import Asterisk, given_in_redis, stasis, talking
from test_dialer_waits_for_events import US

KEYS = Keyspace()


async def test_given_redis_away_while_an_attempt_ends_then_its_end_is_carried_out_once_back(
        redis):
    await given_in_redis(redis, talking("cb-end1", "pool-1"))
    asterisk = Asterisk(["cb-end1~op", "cb-end1~cust"])
    events, published = CallEvents(), []
    events.subscribe(type("Consumer", (), {"on_event": staticmethod(published.append)})())
    calls, _, finished = stasis(redis, asterisk, app="pool-1",
                                ownership=CallOwnership(redis, "a", keys=KEYS), events=events)
    calls.lanes._backoff = (0.01, 0.01)
    await calls.reconcile(adopt="pool-1")
    told = calls.on_finished
    away = [True]

    async def redis_away_once(machine, finish):
        if away.pop() if away else False:
            raise RedisConnectionError("Connection refused")  # the request not yet written
        await told(machine, finish)
    calls.on_finished = redis_away_once

    calls.on_event({"type": "StasisEnd", "channel": {"id": "cb-end1~cust"}})
    await calls.lanes.join()

    assert finished == [("cb-end1", "connected")]  # told once it could be written
    # the end's step is published once over its two tries (the dashboard counts it once)
    assert [(e.name, e.new) for e in published if e.call_id == "req-cb-end1"] == [
        ("callback:state_changed", "ended"), ("callback:attempt_ended", None)]
    assert set(asterisk.hung_up) == {"cb-end1~op"}
    assert calls.attempts == {} and calls.pending_timers == 0
    assert not await redis.exists(KEYS.snapshot("callback-call", "cb-end1"),
                                  KEYS.lease("cb-end1"), KEYS.fencing_counter("cb-end1"))
    assert await redis.zrange(KEYS.callback_attempts(), 0, -1) == []
    await calls.close()


def test_given_an_attempts_end_told_twice_then_its_request_changes_once():
    fakes = DialerFakes(CallbackRequest(number="+12125550100", source="web"), US)
    calls = dialer(fakes)
    assert asyncio.run(calls.dial_due()) == 1
    [(machine, _)] = fakes.started
    finish = k.Finish("no-answer", {"detail": "no answer"})

    asyncio.run(calls.finished(machine, finish))
    asyncio.run(calls.finished(machine, finish))  # its end tried again after storage failed

    ended = [h for h in fakes.stored.history if h["event"] == "attempt ended"]
    assert [h["call"] for h in ended] == [machine.call_id]
    assert fakes.stored.status == "pending" and fakes.stored.attempts == 1
    assert fakes.locks == {}
    assert fakes.card[1:] == [{"event": "callback retry", "request": fakes.stored.id,
                               "outcome": "no-answer", "call": machine.call_id}]


async def test_given_redis_away_between_the_requests_save_and_its_card_line_then_the_end_tried_again_writes_the_line_once(  # noqa: E501
        redis):
    request = CallbackRequest(number="+12125550100", source="web")
    fakes = DialerFakes(request, US)
    customers = Customers(redis, keys=KEYS)
    away = [True]

    async def redis_away_once(number, event, **data):
        if event != "callback attempt" and (away.pop() if away else False):
            raise RedisConnectionError("Connection refused")  # the request already saved
        await Customers.note(customers, number, event, **data)
    customers.note = redis_away_once
    fakes.customers = customers
    calls = dialer(fakes)
    assert await calls.dial_due() == 1
    [(machine, _)] = fakes.started
    finish = k.Finish("connected", {})

    try:
        await calls.finished(machine, finish)
    except RedisConnectionError:
        pass  # the lane tries the end again
    assert fakes.stored.status == "done" and fakes.locks != {}
    await calls.finished(machine, finish)
    await calls.finished(machine, finish)  # and once more: the line is there already

    card = await customers.card(request.number)
    assert [(e["event"], e.get("call")) for e in card["history"]] == [
        ("callback attempt", None), ("callback done", machine.call_id)]
    assert fakes.stored.status == "done" and fakes.locks == {}
