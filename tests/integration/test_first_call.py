"""The first call flow against the real Asterisk: greet, then a free operator, or music in a
holding bridge until one is free; hang-ups clean everything up."""

from __future__ import annotations

import asyncio
import time

import pytest

from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from ari_app.inbound.keys import inbound_key, store_key

from harness import SILENCE, assert_music, record_heard, record_heard_since, until
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration


def prompt_of(event: dict) -> str:
    return event["playback"]["id"].rsplit("~", 1)[-1]


async def wait_prompt(observer, channel: str, prompt: str, kind: str = "PlaybackFinished",
                      timeout: float = 20.0, after: float = 0.0) -> dict:
    return await observer.wait_for(
        lambda e: e.get("type") == kind and prompt_of(e) == prompt and e["_t"] >= after
        and e["playback"]["target_uri"] == f"channel:{channel}", timeout=timeout,
        what=f"{kind} {prompt}")


async def talk_bridge_with(ari, *channel_ids: str, timeout: float = 10.0) -> dict:
    """Wait until one bridge holds exactly these channels; return it."""
    wanted = set(channel_ids)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    bridges = []
    while loop.time() < end:
        bridges = await ari.bridges()
        for bridge in bridges:
            if set(bridge["channels"]) == wanted:
                return bridge
        await asyncio.sleep(0.1)
    raise AssertionError(f"no bridge with exactly {wanted}; bridges: {bridges}")


async def test_given_free_operator_when_caller_dials_in_then_greeted_and_bridged_with_operator(
        app, parties, ari, redis):
    callers, phones, observer = parties
    with capture_logs(processors=[merge_contextvars]) as logs:
        _, call_id = await callers.dial_local("100")
        await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    transitions = [e for e in logs if e["event"] == "inbound transition"]
    assert [(t["old"], t["new"]) for t in transitions] == [
        ("greeting", "seeking_operator"), ("seeking_operator", "ringing_operator"),
        ("ringing_operator", "connected")]
    assert all(t["call_id"] == call_id and t["rule"] == "inbound" for t in transitions)

    # greeting first, then the recording notice: in that order, each heard to the end
    finished = []
    for prompt in ("greeting", "recording-notice"):
        ev = await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                     and prompt_of(e) == prompt, what=f"{prompt} finished")
        assert ev["playback"]["state"] == "done", ev["playback"]
        assert ev["playback"]["target_uri"] == f"channel:{call_id}"
        finished.append(ev["_t"])
    assert finished[0] < finished[1]
    started = [prompt_of(e) for e in observer.of_type("PlaybackStarted")
               if e["playback"]["target_uri"] == f"channel:{call_id}"]
    assert started == ["greeting", "recording-notice"]

    # the operator's desk phone rang only after the greeting, and once answered is bridged
    ring = await phones.wait_for(lambda e: e.get("type") == "StasisStart", what="phone ringing")
    assert ring["_t"] > finished[1]
    operator_leg = f"{call_id}~op1"
    bridge = await talk_bridge_with(ari, call_id, operator_leg)
    assert bridge["bridge_type"] == "mixing"

    async def both_entered() -> list[dict] | None:
        """The timeline once the app has heard both parties enter (Asterisk may show the
        bridge over REST before the app has the operator's ChannelEnteredBridge)."""
        timeline = await app[store_key].timeline(call_id)
        entered = {e["party"] for e in timeline if e["event"] == "ChannelEnteredBridge"
                   and e["bridge"] == bridge["id"]}
        return timeline if entered == {"caller", "operator"} else None

    timeline = await until(both_entered, 5, "both parties noted in the talk bridge")
    events = [e["event"] for e in timeline]
    assert events[0] == "call started"
    assert "operator dialed" in events
    assert [e["prompt"] for e in timeline if e["event"] == "PlaybackFinished"] == [
        "greeting", "recording-notice"]
    assert await redis.get(KEYS.operator("PJSIP/operator1")) == call_id.encode()

    # the caller hangs up: the operator's leg goes too, and the call is forgotten
    await callers.hang_up(call_id.replace("call-", "tc-"))
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == operator_leg, what="operator leg gone")
    await observer.wait_for(lambda e: e.get("type") == "BridgeDestroyed"
                            and e["bridge"]["id"] == bridge["id"], what="bridge destroyed")
    await app[inbound_key].lanes.join()
    timeline = await app[store_key].timeline(call_id)
    assert timeline[-1]["event"] == "call ended"
    assert await redis.ttl(KEYS.timeline(call_id)) > 0


async def test_given_no_operator_free_when_caller_dials_in_then_waits_on_music_until_one_frees(
        app, parties, ari, spool):
    callers, phones, observer = parties
    phones.mode.update(operator1="busy", operator2="busy")
    ours, call_id = await callers.dial_local("100")

    # both operators tried and busy: the caller is told why, then hears music in a holding bridge
    busy = await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                   and prompt_of(e) == "all-operators-busy", timeout=20,
                                   what="busy prompt")
    assert busy["playback"]["state"] == "done"
    hold_bridge = f"{call_id}~hold"
    bridge = await observer.wait_for(lambda e: e.get("type") == "ChannelEnteredBridge"
                                     and e["bridge"]["id"] == hold_bridge, what="holding bridge")
    assert bridge["bridge"]["bridge_type"] == "holding"
    assert bridge["channel"]["id"] == call_id
    assert bridge["_t"] >= busy["_t"], "music must follow the explanation, not cut it"
    # and the caller really hears music (not silence, not a prompt): measured on their leg
    levels = await record_heard(callers, ours, 3, spool)
    assert len(levels) >= 25
    # the music's first start on this call (a track from its beginning), after the snoop's own
    # first 0.5 s: music, and no dead air
    assert_music(levels[5:], "waiting for an operator")
    assert max(levels) < 4000, f"a prompt where music was expected: {levels}"
    rings = phones.of_type("StasisStart")
    assert {e["args"][1] for e in rings} == {"operator1", "operator2"}

    # an operator becomes free: the waiting caller is connected without doing anything
    phones.mode["operator2"] = "answer"
    freed_at = time.time()
    await phones.wait_for(lambda e: e.get("type") == "StasisStart" and e["args"][1] == "operator2"
                          and e["_t"] > freed_at, timeout=10, what="operator2 rings again")
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        talk = [b for b in await ari.bridges() if b["id"] == f"{call_id}~talk"]
        if talk and len(talk[0]["channels"]) == 2:
            break
        assert asyncio.get_running_loop().time() < deadline, "caller never connected"
        await asyncio.sleep(0.1)
    assert call_id in talk[0]["channels"]
    assert hold_bridge not in {b["id"] for b in await ari.bridges()}, "holding bridge left over"
    await callers.hang_up(ours)  # the app fixture then checks the app let everything go


async def test_given_connected_call_when_operator_hangs_up_then_caller_released_and_cleaned(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    phone_channel = phones.answered["operator1"]
    await ari.hangup(phone_channel)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller released")
    await observer.wait_for(lambda e: e.get("type") == "BridgeDestroyed", what="bridge gone")
    await app[inbound_key].lanes.join()
    assert not await redis.exists(KEYS.call(call_id))
    assert not await redis.exists(KEYS.operator("PJSIP/operator1"))


async def test_given_sip_caller_when_dials_inbound_then_hears_greeting_and_talks_to_operator(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours = await callers.dial_sip("100")
    # the PBX side of the SIP call enters the app; its greeting names the call id
    inbound = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished" and prompt_of(e) == "greeting",
        timeout=15, what="greeting finished")
    call_id = inbound["playback"]["target_uri"].split(":", 1)[1]
    channel = next(c for c in await ari.channels() if c["id"] == call_id)
    assert channel["name"].startswith("PJSIP/sim-caller-"), channel["name"]
    assert channel["caller"]["number"] == "+12125550199"
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=15)
    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == call_id, what="PBX leg gone")


RINGING_ON = ("[operators]\nring_timeout = 25\nconnecting_prompt_after = 2\n"
              "connecting_prompt_every = 9\n")


async def _operator_took(observer, call_id: str, timeout: float = 20.0) -> dict:
    return await observer.wait_for(
        lambda e: e.get("type") == "ChannelEnteredBridge"
        and e["bridge"]["id"] == f"{call_id}~talk" and e["channel"]["id"] == f"{call_id}~op1",
        timeout=timeout, what="the operator in the talk bridge")


@pytest.mark.policy(RINGING_ON)
async def test_given_a_free_operators_phone_ringing_on_then_ringback_a_word_in_its_place_and_ringback_again(
        app, parties, ari, spool):
    """A SIP caller (in-band ringback on an answered call): the ringback from the first ring,
    at 2 s "an operator will be with you shortly" in its place, the ringback again, at 11 s
    (9 s from the first word's start) "we are still calling an operator", the ringback again
    until the operator answers at 19.5 s, all recorded on the caller's side."""
    callers, phones, observer = parties
    phones.answer_delay = 19.5
    ours = await callers.dial_sip("100")
    greeting = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted" and prompt_of(e) == "greeting",
        timeout=15, what="greeting started")
    call_id = greeting["playback"]["target_uri"].split(":", 1)[1]
    talking = asyncio.Event()
    heard = asyncio.create_task(record_heard_since(callers, ours, 35, spool, stop=talking))

    rang = await wait_prompt(observer, call_id, "recording-notice", "PlaybackFinished")
    word = await wait_prompt(observer, call_id, "connecting-operator", "PlaybackStarted")
    said = await wait_prompt(observer, call_id, "connecting-operator", "PlaybackFinished")
    again = await wait_prompt(observer, call_id, "connecting-operator-again", "PlaybackStarted")
    said_again = await wait_prompt(observer, call_id, "connecting-operator-again",
                                   "PlaybackFinished")
    took = await _operator_took(observer, call_id)
    talking.set()
    levels, t0 = await heard

    assert 1.8 <= word["_t"] - rang["_t"] <= 3.0, word["_t"] - rang["_t"]
    assert 8.8 <= again["_t"] - word["_t"] <= 9.5, "start to start"
    assert said["playback"]["state"] == said_again["playback"]["state"] == "done", (
        "each said to its end while the phone rang on")
    assert took["_t"] - rang["_t"] >= 19.0, "the words do not hurry the operator's answer"

    def heard_from(t: float, seconds: float) -> list[int]:
        start = round((t - t0) * 10)
        return levels[start:start + round(seconds * 10)]

    # the ringback tone's first 2 s on, before the first word, between the two and after the
    # second (0.3 s in: the events' own lag), and each word in between
    stretches = [heard_from(at["_t"] + 0.3, 1.4) for at in (rang, said, said_again)]
    assert all(len(s) == 14 and min(s) > SILENCE for s in stretches), (stretches, levels)
    assert max(heard_from(word["_t"] + 0.3, 2.5)) > 1000, levels
    assert max(heard_from(again["_t"] + 0.3, 2.5)) > 1000, levels
    timeline = await app[store_key].timeline(call_id)
    assert [e["prompt"] for e in timeline if e["event"] == "PlaybackStarted"] == [
        "greeting", "recording-notice", "connecting-operator", "connecting-operator-again"]
    await callers.hang_up(ours)


async def _dial_until_the_word_at_10_s(callers, observer) -> tuple:
    """A caller dials; the shipped first word ("an operator will be with you shortly") 10 s
    after the greeting's recording notice ended, while the phone rings: (the caller's
    channel, the call id, the notice's end, the word's start)."""
    ours, call_id = await callers.dial_local("100")
    rang = await wait_prompt(observer, call_id, "recording-notice", "PlaybackFinished")
    word = await wait_prompt(observer, call_id, "connecting-operator", "PlaybackStarted",
                             timeout=15)
    assert 9.8 <= word["_t"] - rang["_t"] <= 11.0, word["_t"] - rang["_t"]
    return ours, call_id, rang, word


@pytest.mark.policy("[operators]\nring_timeout = 15\nconnecting_prompt_after = 10\n")
async def test_given_shipped_ring_times_when_the_phone_rings_10_s_then_the_word_and_an_answer_cuts_it_short(
        app, parties, ari):
    """The shipped times (ring 15 s, the word at 10 s): the operator answers at 12 s, in the
    middle of the word, which stops at once: the caller talks to them without waiting for it."""
    callers, phones, observer = parties
    phones.answer_delay = 12.0
    ours, call_id, rang, word = await _dial_until_the_word_at_10_s(callers, observer)
    stopped = await wait_prompt(observer, call_id, "connecting-operator", "PlaybackFinished")
    took = await _operator_took(observer, call_id)

    assert stopped["_t"] - word["_t"] < 3.0, "cut short (it is 3.5 s long)"
    assert abs(took["_t"] - stopped["_t"]) < 1.0, (took["_t"], stopped["_t"])
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    timeline = await app[store_key].timeline(call_id)
    assert [e["prompt"] for e in timeline if e["event"] == "PlaybackStarted"] == [
        "greeting", "recording-notice", "connecting-operator"]
    await callers.hang_up(ours)


@pytest.mark.policy("[operators]\nring_timeout = 40\nconnecting_prompt_after = 10\n"
                    "connecting_prompt_every = 25\n")
async def test_given_shipped_word_times_when_a_phone_rings_40_s_then_a_word_at_10_s_and_another_at_35_s(
        app, parties, ari):
    """The words' shipped times (the first at 10 s, then every 25 s, start to start) on a phone
    that may ring 40 s: "an operator will be with you shortly" at 10 s, "we are still calling
    an operator" at 35 s, and the operator answering at 38 s cuts that one short."""
    callers, phones, observer = parties
    phones.answer_delay = 38.0
    ours, call_id, rang, word = await _dial_until_the_word_at_10_s(callers, observer)
    said = await wait_prompt(observer, call_id, "connecting-operator", "PlaybackFinished")
    again = await wait_prompt(observer, call_id, "connecting-operator-again", "PlaybackStarted",
                              timeout=30)
    stopped = await wait_prompt(observer, call_id, "connecting-operator-again",
                                "PlaybackFinished", timeout=15)
    took = await _operator_took(observer, call_id, timeout=15)

    assert said["playback"]["state"] == "done"
    assert 24.8 <= again["_t"] - word["_t"] <= 25.5, again["_t"] - word["_t"]
    assert abs(took["_t"] - stopped["_t"]) < 1.0, "cut short by the answer"
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    timeline = await app[store_key].timeline(call_id)
    assert [e["prompt"] for e in timeline if e["event"] == "PlaybackStarted"] == [
        "greeting", "recording-notice", "connecting-operator", "connecting-operator-again"]
    await callers.hang_up(ours)


@pytest.mark.policy("[operators]\nring_timeout = 15\nconnecting_prompt_after = 10\n")
async def test_given_shipped_ring_times_when_the_first_phone_rings_out_then_15_s_with_the_word_once_then_the_next_operator(
        app, app_runner, parties, ari):
    """The shipped times (ring 15 s, the word at 10 s): operator1's phone rings out, the
    caller hears the word once, said to its end, and is put through to operator2; operator1
    is paused as missed, so the next caller does not ring them."""
    callers, phones, observer = parties
    phones.mode["operator1"] = "ignore"
    ours, call_id, rang, word = await _dial_until_the_word_at_10_s(callers, observer)
    said = await wait_prompt(observer, call_id, "connecting-operator", "PlaybackFinished")
    rung_out = await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                       and e["channel"]["id"] == f"{call_id}~op1",
                                       timeout=20, what="operator1's phone rang out")
    await talk_bridge_with(ari, call_id, f"{call_id}~op2", timeout=15)

    assert said["playback"]["state"] == "done" and said["_t"] < rung_out["_t"]
    assert 14.5 <= rung_out["_t"] - rang["_t"] <= 16.5, rung_out["_t"] - rang["_t"]
    timeline = await app[store_key].timeline(call_id)
    assert [e["prompt"] for e in timeline if e["event"] == "PlaybackStarted"] == [
        "greeting", "recording-notice", "connecting-operator"], "the word once"
    listed = await app_runner.operators()
    assert (listed["PJSIP/operator1"]["state"], listed["PJSIP/operator1"]["reason"]) == (
        "paused", "missed")
    await callers.hang_up(ours)

async def test_given_unknown_extension_when_dialed_then_caller_hears_no_service_and_app_untouched(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, other = await callers.dial_local("555")
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, timeout=15, what="call ended")
    assert not await redis.smembers(KEYS.live_calls())
    assert not phones.of_type("StasisStart")
