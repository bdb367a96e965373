"""Asterisk restarted under the app (issue 14, faults). The calls a crashed Asterisk lost are closed, on
their timelines, as "lost: Asterisk restarted" (not as callers who hung up), their operators
are free again, nothing of them stays in Redis, and the app serves the next caller without a
restart of its own; a callback that fell due meanwhile is dialed once Asterisk is back."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time

import pytest

from ari_app.ari import AriUnavailable
from ari_app.callback.keys import callbacks_key
from ari_app.callback.service import CallbackRequest
from ari_app.inbound.keys import store_key
from conftest import _wait_phones_registered
from harness import until
from test_callback import (CUSTOMER, PHONE, callback_done, callback_let_go, callback_policy,
                           callback_put_through, callback_talking)
from test_first_call import talk_bridge_with
from test_storage_faults import _healthy, _operators_online
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration


async def test_asterisk_restart_closes_lost_calls_frees_operators_and_serves_the_next(
        app, app_runner, parties, ari, redis, sandbox):
    instance, _ = sandbox
    callers, phones, observer = parties
    talking, talking_id = await callers.dial_local("100")
    await talk_bridge_with(ari, talking_id, f"{talking_id}~op1", timeout=20)
    phones.mode["operator2"] = "busy"
    waiting, waiting_id = await callers.dial_local("100")
    await observer.wait_for(lambda e: e.get("type") == "ChannelEnteredBridge"
                            and e["bridge"]["id"] == f"{waiting_id}~hold", timeout=20,
                            what="the second caller waiting on music")
    lost = (talking_id, waiting_id)

    # a crash (SIGKILL): `core stop now` would hang the calls up first, and the app would
    # hear each one end as it does any hang-up
    await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(instance.restart_asterisk, crash=True))

    async def closed() -> bool:
        return not any([await redis.sismember(KEYS.live_calls(), c) for c in lost])
    await until(closed, 30, "both lost calls closed by the reconnected app")
    for call_id in lost:
        timeline = await app[store_key].timeline(call_id)
        steps = [(e.get("step"), e.get("why"), e.get("outcome")) for e in timeline
                 if e.get("step") in ("inbound:call_lost", "inbound:call_ended")]
        assert steps == [("inbound:call_lost", "Asterisk restarted", None),
                         ("inbound:call_ended", None, "lost: Asterisk restarted")], timeline
        assert not await redis.exists(KEYS.call(call_id)), call_id

    # the operator of the lost call is free again (no reservation), and the next caller is
    # put through to an operator
    await until(lambda: _free(redis, "PJSIP/operator1"), 15, "operator1 free again")
    await asyncio.get_running_loop().run_in_executor(None, _wait_phones_registered, instance)
    for party in parties:
        await asyncio.wait_for(party.stream.connected.wait(), 30)
    await until(lambda: _operators_online(ari), 30, "both operators online again")
    await until(lambda: _healthy(app_runner.base_url), 30, "the app healthy again by itself")
    phones.mode["operator2"] = "answer"
    ours, call_id = await callers.dial_local("100")
    await until(lambda: _talking(ari, call_id), 40, "the next caller talking with an operator")
    await callers.hang_up(ours)


async def _free(redis, endpoint: str) -> bool:
    return not await redis.exists(KEYS.operator(endpoint))


async def _talking(ari, call_id: str) -> bool:
    talk = [b for b in await ari.bridges() if b["id"] == f"{call_id}~talk"]
    return bool(talk) and len(talk[0]["channels"]) == 2 and call_id in talk[0]["channels"]


@pytest.mark.dialer
async def test_asterisk_restart_with_a_callback_due_then_dialed_once_it_is_back(
        app_runner, settings, redis, parties, ari, sandbox):
    """A callback that falls due while Asterisk is away waits for it (no attempt spent, no
    request left locked) and is dialed once Asterisk and the operators' phones are back."""
    instance, _ = sandbox
    callers, phones, observer = parties
    callback_policy(settings)
    app = await app_runner.start()
    restart = asyncio.get_running_loop().run_in_executor(None, instance.restart_asterisk)
    await until(lambda: _down(ari), 20, "Asterisk stopped")
    accepted = await app[callbacks_key].accept(CallbackRequest(
        number=CUSTOMER, source="web", name="Ann Lee", earliest_at=time.time() - 1))
    await restart
    await asyncio.get_running_loop().run_in_executor(None, _wait_phones_registered, instance)
    for party in parties:
        await asyncio.wait_for(party.stream.connected.wait(), 30)

    await callback_put_through(observer, ari, phones, timeout=45)
    await ari.hangup(phones.answered[PHONE])

    record = await until(callback_done(redis, accepted.request.id), 15,
                         "the callback closed as done")
    assert (record["outcome"], record["attempts"]) == ("connected", 1)


@pytest.mark.dialer
async def test_asterisk_restart_with_a_callback_talking_then_closed_and_its_operator_freed(
        app_runner, settings, redis, parties, ari, sandbox):
    """A callback whose operator and customer are talking when Asterisk crashes: Asterisk
    says nothing of the lost legs, so the reconnected app asks which are gone and ends the
    attempt (they talked: done, connected), its operator free and nothing of it in Redis."""
    instance, _ = sandbox
    request_id, call = await callback_talking(app_runner, settings, parties, ari)

    await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(instance.restart_asterisk, crash=True))

    record = await until(callback_done(redis, request_id), 30,
                         "the lost callback closed by the reconnected app")
    assert (record["outcome"], record["attempts"]) == ("connected", 1)
    await until(callback_let_go(redis, request_id, call), 15,
                "operator1 free, the request unlocked, no snapshot left")
    await asyncio.get_running_loop().run_in_executor(None, _wait_phones_registered, instance)
    for party in parties:
        await asyncio.wait_for(party.stream.connected.wait(), 30)


async def _down(ari) -> bool:
    try:
        await ari.ping()
    except AriUnavailable:
        return True
    return False


async def test_given_asterisk_crashed_twice_and_redis_paused_when_revived_then_both_answer(
        sandbox):
    """The sandbox's own faults: a crashed Asterisk's control socket can answer for a moment
    after its main thread is gone (the CI run of 9e9ed8b: "Asterisk already running"), so a
    restart waits for it; and whatever a failed test left stopped is started again before the
    next one (revive), instead of failing every test after it."""
    instance, _ = sandbox
    loop = asyncio.get_running_loop()
    for _ in range(2):
        await loop.run_in_executor(None, functools.partial(instance.restart_asterisk, crash=True))
        assert "fully booted" in instance.cli("core waitfullybooted").lower()
    state = instance.load_state()
    os.kill(state.asterisk_pid, signal.SIGKILL)
    instance.pause_redis()

    revived = await loop.run_in_executor(None, instance.revive)

    assert revived == ["redis (paused)", "asterisk"]
    assert "fully booted" in instance.cli("core waitfullybooted").lower()
    await loop.run_in_executor(None, _wait_phones_registered, instance)
    assert await loop.run_in_executor(None, instance.revive) == []


async def test_given_asterisk_crashed_with_a_core_dump_when_revived_then_the_core_is_named(
        sandbox):
    """A crash, not a kill: revive names the core Asterisk dumped, so that a crash in CI reads
    as one instead of as 'Asterisk not answering' in whichever test was running (the CI run
    of fe120be: Asterisk crashed in res_pjsip_refer during a desk phone's transfer). Asterisk
    is its pid namespace's init, which a signal from outside cannot make dump core; so the
    core is one as Asterisk writes it (its command line within the first notes), written
    where it lands, and Asterisk is killed."""
    instance, _ = sandbox
    loop = asyncio.get_running_loop()
    state = instance.load_state()
    core = instance.root / "core"
    try:
        core.write_bytes(b"\x7fELF" + b"\0" * 4096 + b"asterisk -C /srv/etiquette/other/etc/"
                         b"asterisk.conf -f -n -g\0")
        assert instance.core_dump() is None  # another sandbox's crash, not this one's
        core.write_bytes(b"\x7fELF" + b"\0" * 4096 + f"asterisk -C {instance.inner}/etc/"
                         f"asterisk.conf -f -n -g\0".encode())
        os.kill(state.asterisk_pid, signal.SIGKILL)

        revived = await loop.run_in_executor(None, instance.revive)

        assert revived == [f"asterisk (it had crashed: core dump {core})"]
        assert instance.core_dump() is None  # started again since: that core is not this one's
        await loop.run_in_executor(None, _wait_phones_registered, instance)
    finally:
        core.unlink(missing_ok=True)
