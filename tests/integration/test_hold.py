"""Hold etiquette against the real Asterisk, with the policy's times shrunk (check-in every
2 s, fallback after 7 s): the caller is told why, hears music with check-ins at the interval,
is offered a way out, and every path ends cleanly."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from ari_app.ari import operations as ops
from ari_app.inbound.machine import PutOnHold
from ari_app.keys import inbound_key, store_key

from harness import record_heard_since
from test_first_call import prompt_of, talk_bridge_with

pytestmark = pytest.mark.integration
LONG_FALLBACK = '[hold]\nfallback_after = 60\n'


async def connected_call(callers, ari) -> tuple[str, str]:
    ours, call_id = await callers.dial_local("100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    return ours, call_id


def media_of(observer, playback_id: str) -> list[str]:
    """Every media a (multi-media) playback went through, in order (each is announced by a
    PlaybackStarted and left by a PlaybackContinuing)."""
    media: list[str] = []
    for e in observer.events:
        if (e.get("type") == "PlaybackStarted" and e["playback"]["id"] == playback_id):
            media.append(e["playback"]["media_uri"])
    return media


def played(observer, channel: str, kind: str = "PlaybackStarted") -> list[tuple[str, float, dict]]:
    return [(prompt_of(e), e["_t"], e) for e in observer.of_type(kind)
            if e["playback"]["target_uri"] == f"channel:{channel}"]


async def wait_prompt(observer, channel: str, prompt: str, kind: str = "PlaybackFinished",
                      timeout: float = 20.0, after: float = 0.0) -> dict:
    return await observer.wait_for(
        lambda e: e.get("type") == kind and prompt_of(e) == prompt and e["_t"] >= after
        and e["playback"]["target_uri"] == f"channel:{channel}", timeout=timeout,
        what=f"{kind} {prompt}")


async def timeline(app, call_id: str) -> list[dict]:
    return await app[store_key].timeline(call_id)


@pytest.mark.policy(LONG_FALLBACK)
async def test_given_connected_call_when_put_on_hold_by_rest_then_reason_music_check_ins_and_resume(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)

    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold",
                                        {"reason": "lookup", "expected_minutes": 2})
    assert (status, body["status"]) == (202, "held")

    # told first: on hold, why, and for how long
    intro = await wait_prompt(observer, call_id, "hold-intro", timeout=20)
    assert intro["playback"]["state"] == "done"
    media = media_of(observer, intro["playback"]["id"])
    assert media == ["sound:etiquette/hold-intro", "sound:etiquette/hold-reason-lookup",
                     "sound:etiquette/hold-expected-duration", "number:2",
                     "sound:etiquette/minutes"], media
    talk = next(b for b in await ari.bridges() if b["id"] == f"{call_id}~talk")
    assert talk["channels"] == [f"{call_id}~op1"], "the caller is out of the conversation"

    # check-ins at the interval after the music starts, varied, each one heard to the end
    c1 = await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted", after=intro["_t"])
    assert abs(c1["_t"] - intro["_t"] - 2.0) < 0.5, c1["_t"] - intro["_t"]
    c1_end = await wait_prompt(observer, call_id, "checkin-1", after=intro["_t"])
    c2 = await wait_prompt(observer, call_id, "checkin-2", "PlaybackStarted", after=c1_end["_t"])
    assert abs(c2["_t"] - c1_end["_t"] - 2.0) < 0.5, c2["_t"] - c1_end["_t"]
    # the operator got a nudge the caller did not hear
    nudges = [e for e in observer.of_type("PlaybackStarted")
              if e["playback"]["target_uri"] == f"channel:{call_id}~op1"
              and prompt_of(e) == "nudge"]
    assert nudges and nudges[0]["playback"]["media_uri"] == "sound:etiquette/operator-nudge-hold"

    # resume: music and timers stop at once, thanks, back with the operator
    await wait_prompt(observer, call_id, "checkin-2", after=c1_end["_t"])
    status, body = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    assert (status, body["status"]) == (202, "held")
    await wait_prompt(observer, call_id, "hold-resume-thanks")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    resumed_at = time.time()
    await asyncio.sleep(3)  # longer than a check-in interval: none may come now
    late = [p for p, t, _ in played(observer, call_id) if t > resumed_at]
    assert late == [], f"prompts after resume: {late}"

    events = [e["event"] for e in await timeline(app, call_id) if e["rule"] == "hold"]
    assert events[0] == "hold started" and events.count("check-in") == 2
    assert events[-1] == "hold ended"
    ended = [e for e in await timeline(app, call_id) if e["event"] == "hold ended"][0]
    assert ended["outcome"] == "resumed"
    assert not await redis.exists(f"etq:hold:{call_id}")


async def test_given_hold_when_nobody_chooses_at_fallback_then_callback_to_caller_id_and_operator_freed(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app[inbound_key].request(call_id, PutOnHold(time.time(), "consult", None, "test"))

    menu = await wait_prompt(observer, call_id, "hold-fallback-menu", timeout=30)
    confirmed = await wait_prompt(observer, call_id, "callback-confirmed", timeout=20,
                                  after=menu["_t"])
    # the caller hears when: "we will call you back within N minutes (or hours)"
    said = media_of(observer, confirmed["playback"]["id"])
    assert said[:3] == ["sound:etiquette/callback-confirmed",
                        "sound:etiquette/callback-window-prefix", "sound:etiquette/callback-within"]
    assert said[3].startswith("number:") and said[-1] == "sound:etiquette/goodbye", said
    # the operator is told and freed; the caller is let go after the goodbye
    await wait_prompt(observer, f"{call_id}~op1", "operator-freed-callback", timeout=15)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller released")
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator freed")

    ids = await redis.zrange("etq:callbacks:pending", 0, -1)
    assert len(ids) == 1
    request = json.loads(await redis.get(f"etq:callback:{ids[0].decode()}"))
    assert request["number"] == "+12125550123" and request["own_number"] is True
    assert request["call_id"] == call_id and request["operator"] == "PJSIP/operator1"
    assert request["reason"] == "consult" and request["source"] == "hold-fallback"
    choice = [e for e in await timeline(app, call_id) if e["event"] == "callback requested"]
    assert choice and choice[0]["chosen"] == "default"


async def test_given_fallback_menu_when_caller_presses_3_and_types_a_number_then_that_number_saved(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "system"})
    await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="3")
    await wait_prompt(observer, call_id, "callback-own-number", "PlaybackStarted")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="4930123456#", between=150)
    await wait_prompt(observer, call_id, "callback-confirmed", timeout=15)
    ids = await redis.zrange("etq:callbacks:pending", 0, -1)
    request = json.loads(await redis.get(f"etq:callback:{ids[0].decode()}"))
    assert request["number"] == "4930123456" and request["own_number"] is False


async def test_given_fallback_menu_when_caller_presses_2_then_voicemail_recorded_and_indexed(
        app, app_runner, parties, ari, redis, spool):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2")
    await wait_prompt(observer, call_id, "voicemail-intro", timeout=15)
    # the caller speaks (a recorded voice played into their own leg), then presses #
    await ari.play(ours, "sound:queue-thankyou", playback_id=f"speak-{ours}")
    await callers.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                           and e["playback"]["id"] == f"speak-{ours}", what="caller spoke")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="#")
    await wait_prompt(observer, call_id, "voicemail-saved", timeout=15)
    ids = await redis.zrange("etq:voicemails", 0, -1)
    assert len(ids) == 1
    vm = json.loads(await redis.get(f"etq:voicemail:{ids[0].decode()}"))
    assert vm["for_whom"] == "PJSIP/operator1" and vm["caller_number"] == "+12125550123"
    assert vm["duration"] >= 1
    path = spool / f"{vm['recording']}.wav"
    assert path.exists() and path.stat().st_size > 8000
    path.unlink()
    await wait_prompt(observer, f"{call_id}~op1", "operator-freed-voicemail", timeout=15)


@pytest.mark.policy(LONG_FALLBACK)
async def test_given_caller_on_hold_when_operator_hangs_up_then_caller_offered_a_way_out(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    await wait_prompt(observer, call_id, "hold-intro")
    await ari.hangup(phones.answered["operator1"])
    gone = await wait_prompt(observer, call_id, "operator-gone")
    assert media_of(observer, gone["playback"]["id"])[-1] == "sound:etiquette/operator-gone-menu"
    assert ours in {c["id"] for c in await ari.channels()}, "the caller must not be dropped"
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="3")
    await wait_prompt(observer, call_id, "callback-own-number", "PlaybackStarted")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="1")
    await wait_prompt(observer, call_id, "callback-confirmed")
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller released")
    assert len(await redis.zrange("etq:callbacks:pending", 0, -1)) == 1
    assert not await redis.exists("etq:operator:PJSIP/operator1")


@pytest.mark.policy(LONG_FALLBACK)
async def test_given_caller_on_hold_when_caller_hangs_up_then_everything_cleaned(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {})
    await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted", timeout=20)
    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator freed")
    assert not await redis.exists(f"etq:hold:{call_id}")
    entries = await timeline(app, call_id)
    assert any(e["event"] == "breach" and e["rule"] == "hold" for e in entries), \
        "a hold without a reason is recorded as a breach"


@pytest.mark.policy(LONG_FALLBACK)
async def test_given_operator_feature_codes_when_dialed_then_hold_with_reason_and_resume(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    phone = phones.answered["operator1"]
    await ari.call(ops.SEND_DTMF, channelId=phone, dtmf="*72", between=200)
    intro = await wait_prompt(observer, call_id, "hold-intro")
    assert "sound:etiquette/hold-reason-consult" in media_of(observer, intro["playback"]["id"])
    await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted")
    await ari.call(ops.SEND_DTMF, channelId=phone, dtmf="*8", between=200)
    await wait_prompt(observer, call_id, "hold-resume-thanks")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")

    # a second hold in the same call is flagged
    await ari.call(ops.SEND_DTMF, channelId=phone, dtmf="*71", between=200)
    await wait_prompt(observer, call_id, "hold-intro", "PlaybackStarted", after=intro["_t"] + 0.1)
    entries = await timeline(app, call_id)
    breaches = [e for e in entries if e["event"] == "breach"]
    assert [b["what"] for b in breaches] == ["caller put on hold again"]
    sources = [e["source"] for e in entries if e["event"] == "hold started"]
    assert sources == ["feature-code", "feature-code"]


async def test_given_rest_api_when_misused_then_clear_errors(app, app_runner, parties, ari):
    callers, phones, observer = parties
    status, body = await app_runner.api("POST", "/api/calls/nope/hold", {}, token=None)
    assert (status, body["error_id"]) == (401, "unauthorized")
    status, body = await app_runner.api("POST", "/api/calls/nope/hold", {}, token="wrong")
    assert status == 401
    status, body = await app_runner.api("POST", "/api/calls/nope/hold", {})
    assert (status, body["error_id"]) == (404, "no-such-call")
    ours, call_id = await callers.dial_local("100")
    await wait_prompt(observer, call_id, "greeting", "PlaybackStarted")
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "nap"})
    assert (status, body["error_id"]) == (422, "invalid-request")
    assert "unknown reason 'nap'" in body["message"]
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold", {})
    assert (status, body["error_id"]) == (409, "wrong-call-state")  # still being greeted
    status, body = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    assert status == 409


@pytest.mark.policy('[hold]\ncheck_in_interval = 4\nfallback_after = 60\n')
async def test_given_hold_when_check_in_plays_then_caller_hears_music_prompt_music_without_dead_air(
        app, app_runner, parties, ari, spool):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    await wait_prompt(observer, call_id, "hold-intro")
    # what the caller hears from the end of the intro: ~4 s music, the 6.4 s check-in, music
    levels, t0 = await record_heard_since(callers, ours, 14, spool)
    start = await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted")
    end = await wait_prompt(observer, call_id, "checkin-1")
    i, j = int((start["_t"] - t0) * 10), int((end["_t"] - t0) * 10)  # 100 ms windows
    assert 20 < i < j < len(levels) - 20, (i, j, len(levels))

    def music(part: list[int], what: str) -> None:
        ordered = sorted(part)
        assert 150 < ordered[len(ordered) // 2] < 2500, f"{what}: no music, heard {part}"
        assert _longest_run(part, lambda x: x < 40) <= 5, f"{what}: dead air, heard {part}"

    music(levels[10:i - 2], "before the check-in")
    checkin = sorted(levels[i + 2:j - 2])
    assert checkin[len(checkin) // 2] > 2500, f"the check-in was not heard: {levels[i:j]}"
    # the switches: music -> prompt and prompt -> music, each with at most 0.5 s of silence
    assert _longest_run(levels[i - 5:i + 5], lambda x: x < 40) <= 5, levels[i - 5:i + 5]
    assert _longest_run(levels[j - 3:j + 8], lambda x: x < 40) <= 5, levels[j - 3:j + 8]
    music(levels[j + 8:], "after the check-in (music must come back)")


def _longest_run(values, predicate) -> int:
    best = run = 0
    for v in values:
        run = run + 1 if predicate(v) else 0
        best = max(best, run)
    return best


async def test_given_fallback_menu_when_caller_presses_1_then_music_and_check_ins_go_on(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    menu = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="1")
    stopped = await wait_prompt(observer, call_id, "hold-fallback-menu", after=menu["_t"])
    assert stopped["playback"]["state"] in ("done", "cancelled", "stopped"), stopped["playback"]
    nxt = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted" and prompt_of(e).startswith("checkin")
        and e["_t"] > menu["_t"] and e["playback"]["target_uri"] == f"channel:{call_id}",
        what="a check-in after keep holding")
    assert abs(nxt["_t"] - stopped["_t"] - 2.0) < 0.7, nxt["_t"] - stopped["_t"]
    choices = [e for e in await timeline(app, call_id) if e["event"] == "fallback choice"]
    assert [c["choice"] for c in choices] == ["keep holding"]
    assert await redis.zcard("etq:callbacks:pending") == 0


@pytest.mark.parametrize("state, reached", [
    ("announcing", ("hold-intro", "PlaybackStarted")),
    ("offering", ("hold-fallback-menu", "PlaybackStarted")),
    ("callback number", ("callback-own-number", "PlaybackStarted")),
    ("voicemail", ("voicemail-intro", "PlaybackFinished")),
])
async def test_given_hold_in_each_state_when_caller_hangs_up_then_nothing_left(
        app, app_runner, parties, ari, redis, state, reached):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    if state in ("callback number", "voicemail"):
        await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
        await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="3" if state == "callback number" else "2")
    await wait_prompt(observer, call_id, reached[0], reached[1], timeout=30)
    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator freed")
    await app[inbound_key].lanes.join()
    assert not await redis.exists(f"etq:hold:{call_id}")
    assert not await redis.sismember("etq:calls", call_id)
    ended = [e for e in await timeline(app, call_id) if e["event"] == "hold ended"]
    assert ended and ended[-1]["outcome"] == "caller hung up"
    if state == "voicemail":  # a caller who hangs up instead of pressing # keeps their message
        assert await redis.zcard("etq:voicemails") == 1
    # the app fixture then checks that no channel (snoop included), bridge, lane or timer is left
