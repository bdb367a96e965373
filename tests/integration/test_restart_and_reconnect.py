"""Calls outlive the process: a restarted app takes back the calls it owned from Redis, and a
dropped events WebSocket reconnects and reconciles with the channels that still exist."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from ari_app.ari import operations as ops
from ari_app.inbound.keys import inbound_key
from ari_app.keys import events_key

from test_callback import PHONE, callback_done, callback_let_go, callback_talking
from harness import SILENCE, record_heard_since, rms_windows, until
from test_first_call import prompt_of, talk_bridge_with, wait_prompt
from test_hold import connected_call
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration


async def test_given_caller_waiting_when_app_restarts_then_call_resumed_and_connected(
        app_runner, parties, ari, redis):
    callers, phones, observer = parties
    phones.mode.update(operator1="busy", operator2="busy")
    await app_runner.start()
    ours, call_id = await callers.dial_local("100")
    await observer.wait_for(lambda e: e.get("type") == "ChannelEnteredBridge"
                            and e["bridge"]["id"] == f"{call_id}~hold", timeout=20,
                            what="caller waiting in the holding bridge")

    await app_runner.stop()  # the app goes away; the caller stays on the line, on music
    assert await redis.sismember(KEYS.live_calls(), call_id)
    assert call_id in {c["id"] for c in await ari.channels()}
    phones.mode["operator1"] = "answer"
    restarted_at = time.time()

    app = await app_runner.start()
    assert app[events_key].connects == 1
    deadline = time.monotonic() + 15
    while True:
        talk = [b for b in await ari.bridges() if b["id"] == f"{call_id}~talk"]
        if talk and len(talk[0]["channels"]) == 2:
            break
        assert time.monotonic() < deadline, "the restarted app never connected the caller"
        await asyncio.sleep(0.1)
    greetings = [e for e in observer.of_type("PlaybackStarted")
                 if prompt_of(e) == "greeting" and e["_t"] > restarted_at]
    assert not greetings, "a resumed caller must not be greeted again"
    # the holding bridge goes once the caller is out of it: a step after the connection (a
    # CI run under load read the bridges between the two)
    while f"{call_id}~hold" in {b["id"] for b in await ari.bridges()}:
        assert time.monotonic() < deadline + 10, "the holding bridge was left behind"
        await asyncio.sleep(0.1)
    await callers.hang_up(ours)


@pytest.mark.policy("[operators]\nring_timeout = 30\nconnecting_prompt_after = 2\n")
async def test_given_the_word_in_place_of_the_ringback_when_it_ends_while_the_app_is_down_then_the_ringback_comes_back(
        app_runner, parties, ari, spool):
    """The app stops while a SIP caller hears "an operator will be with you shortly" (the
    operator's phone rings on) and the word ends while it is away: the restarted app finds the
    playback gone and puts the ringback back, never silence until the phone is answered."""
    callers, phones, observer = parties
    phones.mode["operator1"] = "ignore"
    await app_runner.start()
    ours = await callers.dial_sip("100")
    word = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted" and prompt_of(e) == "connecting-operator",
        timeout=25, what="the word in place of the ringback")
    call_id = word["playback"]["target_uri"].split(":", 1)[1]

    await app_runner.stop()
    stopped_at = time.time()
    said = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished" and prompt_of(e) == "connecting-operator",
        timeout=10, what="the word's end")
    assert said["_t"] > stopped_at, "the word ended before the app was away: nothing to resync"

    app = await app_runner.start()
    await app[inbound_key].lanes.join()
    # a full ring cadence (2 s on, 4 s off): the ringback's tone is on again
    levels, _ = await record_heard_since(callers, ours, 7, spool)
    assert sum(level > SILENCE for level in levels) >= 15, levels
    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == call_id, what="PBX leg gone")


async def _recording_ended_while_away(app_runner, callers, ari, observer, call_id: str,
                                      ours: str, what: str) -> str:
    """The caller's message (`what`: complaint, voicemail) is being recorded; the app goes
    away; the caller speaks, then is silent, and the recording stops on that silence with
    nobody to hear its end. Its name."""
    started = await observer.wait_for(
        lambda e: e.get("type") == "RecordingStarted"
        and e["recording"]["name"].startswith(f"{call_id}~{what}-"), timeout=30,
        what=f"the {what}'s recording started")
    name = started["recording"]["name"]
    # the caller speaks (a voice played into their own leg, about 2 s), then is silent: the
    # recording stops 5 s into the silence, by when the app is away
    await ari.play(ours, "sound:queue-thankyou", playback_id=f"speak-{ours}")
    await app_runner.stop()
    stopped_at = time.time()
    ended = await observer.wait_for(lambda e: e.get("type") == "RecordingFinished"
                                    and e["recording"]["name"] == name, timeout=30,
                                    what="the recording stopped on the caller's silence")
    assert ended["_t"] > stopped_at, "it stopped before the app was away: nothing to resync"
    return name


async def _saved_after_the_restart(app_runner, observer, ari, redis, spool, call_id: str,
                                   name: str, what: str, *, told: str, snoop: str) -> None:
    """The app starts again: the caller hears `told`, the one `what` record (complaint,
    voicemail) has the recording `name` with the caller's voice in it, the snoop is gone."""
    restarted_at = time.time()
    app = await app_runner.start()
    await wait_prompt(observer, call_id, told, timeout=15, after=restarted_at)
    await app[inbound_key].lanes.join()
    [record_id] = [i.decode() for i in await redis.zrange(KEYS.record_index(what), 0, -1)]
    record = json.loads(await redis.get(KEYS.record(what, record_id)))
    assert (record["recording"], record["duration"] >= 1) == (name, True), record
    assert not [c for c in await ari.channels() if f"~{snoop}-" in c["id"]], "snoop left"
    levels = rms_windows(spool / f"{name}.wav")
    assert sum(level > SILENCE for level in levels) >= 5, f"no voice in {name}: {levels}"
    (spool / f"{name}.wav").unlink()


@pytest.mark.policy("[supervisor]\nescalation_allowed = false\n")
async def test_given_a_complaint_being_recorded_when_it_stops_while_the_app_is_down_then_saved_with_it_and_the_caller_told(
        app_runner, parties, ari, redis, spool):
    """An upgrade while a caller records a complaint, and the recording stops on their
    silence meanwhile: the restarted app finds it in Asterisk's store, files the complaint
    with it and tells the caller, never leaves them waiting for an end it missed."""
    callers, phones, observer = parties
    await app_runner.start()
    ours, call_id = await connected_call(callers, ari)
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/escalate")
    assert status == 202
    name = await _recording_ended_while_away(app_runner, callers, ari, observer, call_id, ours,
                                             "complaint")

    await _saved_after_the_restart(app_runner, observer, ari, redis, spool, call_id, name,
                                   "complaint", told="complaint-saved", snoop="cpsnoop")
    await callers.hang_up(ours)


async def test_given_a_voice_message_being_recorded_when_it_stops_while_the_app_is_down_then_saved_with_it_and_the_caller_told(
        app_runner, parties, ari, redis, spool):
    """The same for a voice message left from the hold's way out (2): saved with what the
    caller said, "your message has been saved" said to them."""
    callers, phones, observer = parties
    await app_runner.start()
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2")
    name = await _recording_ended_while_away(app_runner, callers, ari, observer, call_id, ours,
                                             "voicemail")

    await _saved_after_the_restart(app_runner, observer, ari, redis, spool, call_id, name,
                                   "voicemail", told="voicemail-saved", snoop="vmsnoop")
    await callers.hang_up(ours)


async def test_given_connected_call_when_caller_hangs_up_while_app_down_then_restart_cleans_up(
        app_runner, parties, ari, redis):
    callers, phones, observer = parties
    await app_runner.start()
    ours, call_id = await callers.dial_local("100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=15)

    await app_runner.stop()
    await callers.hang_up(ours)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller gone")
    # nobody was there to release the operator: their leg is still up
    assert f"{call_id}~op1" in {c["id"] for c in await ari.channels()}

    app = await app_runner.start()
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", timeout=10,
                            what="operator leg released by the restarted app")
    await observer.wait_for(lambda e: e.get("type") == "BridgeDestroyed"
                            and e["bridge"]["id"] == f"{call_id}~talk", what="talk bridge gone")
    await app[inbound_key].lanes.join()
    assert not await redis.sismember(KEYS.live_calls(), call_id)
    assert not await redis.exists(KEYS.operator("PJSIP/operator1"))


@pytest.mark.dialer
async def test_given_callback_talking_when_customer_hangs_up_while_app_down_then_restart_closes_it(
        app_runner, settings, parties, ari, redis):
    """The attempt's snapshot is all that is left of it: the restarted app takes it up, hears
    that the customer's leg is gone, hangs up the operator's and closes the request (they
    talked: done, connected), the operator free again."""
    _, phones, observer = parties
    request_id, call = await callback_talking(app_runner, settings, parties, ari)

    await app_runner.stop()
    await ari.hangup(phones.answered[PHONE])
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call}~cust", what="customer gone")
    assert f"{call}~op" in {c["id"] for c in await ari.channels()}

    await app_runner.start()
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call}~op", timeout=15,
                            what="the operator's leg hung up by the restarted app")

    record = await until(callback_done(redis, request_id), 15, "the callback closed as done")
    assert (record["outcome"], record["attempts"]) == ("connected", 1)
    await until(callback_let_go(redis, request_id, call), 15,
                "operator1 free, the request unlocked, no snapshot left")


async def test_given_connected_call_when_websocket_drops_and_caller_hangs_up_then_resync_cleans(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=15)
    events = app[events_key]

    await events.drop()
    await callers.hang_up(ours)  # while the app's socket is down or just back
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", timeout=10,
                            what="operator leg released after the reconnect")
    assert events.connects == 2
    await asyncio.wait_for(events.connected.wait(), 5)
    await app[inbound_key].lanes.join()
    assert not await redis.sismember(KEYS.live_calls(), call_id)
