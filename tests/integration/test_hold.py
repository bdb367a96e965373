"""Hold etiquette against the real Asterisk, with the policy's times shrunk (check-in every
2 s, fallback after 7 s, 3 s to choose, a menu said once more after 2 s without a key): the
caller is told why, hears music with check-ins at the interval (start to start), is offered a
way out that is never followed by long silence, and every path ends cleanly. One test runs the
shipped times as they are (a check-in every 25 s, the way out at 150 s)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from ari_app.ari import operations as ops
from ari_app.inbound.keys import inbound_key, store_key
from ari_app.inbound.machine import PutOnHold

from harness import (DEAD_AIR_WINDOWS, MUSIC, SILENCE, assert_music, longest_silence,
                     record_heard_since, rms_windows)
from test_first_call import prompt_of, talk_bridge_with, wait_prompt
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

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

    # the first check-in the interval after the music started, varied, each one heard to the
    # end: a check-in longer than the 2 s interval is followed by 2 s of music, not cut
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
    assert not await redis.exists(KEYS.snapshot("hold", call_id))
    await callers.hang_up(ours)


async def test_given_hold_when_nobody_chooses_at_fallback_then_menu_said_twice_then_callback_to_caller_id_and_operator_freed(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app[inbound_key].request(call_id, PutOnHold(time.time(), "consult", None, "test"))

    menu = await wait_prompt(observer, call_id, "hold-fallback-menu", timeout=30)
    # no key: after 2 s of silence the menu says itself once more, the whole of it
    again = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              after=menu["_t"])
    assert again["playback"]["id"] != menu["playback"]["id"]
    assert 1.5 < again["_t"] - menu["_t"] < 2.8, again["_t"] - menu["_t"]
    again_end = await wait_prompt(observer, call_id, "hold-fallback-menu", after=again["_t"],
                                  timeout=20)
    assert media_of(observer, again["playback"]["id"]) == [
        "sound:etiquette/hold-fallback-menu"]
    confirmed = await wait_prompt(observer, call_id, "callback-confirmed", timeout=20,
                                  after=again_end["_t"])
    # then the choice timeout (3 s) from the end of the repeat, and the default: never more
    # than 5 s of silence (the confirmation follows once the request is saved)
    [chosen] = [e for e in await timeline(app, call_id) if e["event"] == "hold ended"]
    assert 2.5 < chosen["t"] - again_end["_t"] < 3.8, chosen["t"] - again_end["_t"]
    menus = {e["playback"]["id"] for p, _, e in played(observer, call_id)
             if p == "hold-fallback-menu"}
    assert len(menus) == 2, menus
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

    ids = await redis.zrange(KEYS.record_index("callback"), 0, -1)
    assert len(ids) == 1
    request = json.loads(await redis.get(KEYS.record("callback", ids[0].decode())))
    assert request["number"] == "+12125550123" and request["own_number"] is True
    assert request["call_id"] == call_id and request["operator"] == "PJSIP/operator1"
    assert request["reason"] == "consult" and request["source"] == "hold-fallback"
    choice = [e for e in await timeline(app, call_id) if e["event"] == "callback requested"]
    assert choice and choice[0]["chosen"] == "default"
    repeats = [e for e in await timeline(app, call_id) if e["event"] == "menu repeated"]
    assert [r["prompt"] for r in repeats] == ["hold-fallback-menu"]


async def test_given_fallback_menu_said_again_when_caller_presses_2_during_it_then_voicemail(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    menu = await wait_prompt(observer, call_id, "hold-fallback-menu", timeout=30)
    again = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              after=menu["_t"])
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2")
    # the repeat is stopped at once and the key acted on, as during the first playing
    stopped = await wait_prompt(observer, call_id, "hold-fallback-menu", after=again["_t"])
    assert stopped["_t"] - again["_t"] < 3.0, "the repeat was not stopped by the key"
    await wait_prompt(observer, call_id, "voicemail-intro", "PlaybackStarted", after=again["_t"])
    choice = [e for e in await timeline(app, call_id) if e["event"] == "fallback choice"]
    assert [(c["choice"], c["chosen"]) for c in choice] == [("voicemail", "caller")]
    await callers.hang_up(ours)


async def test_given_fallback_menu_when_caller_presses_3_and_types_a_number_then_that_number_saved(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "system"})
    await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="3")
    await wait_prompt(observer, call_id, "callback-own-number", "PlaybackStarted")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2125550142#", between=150)
    await wait_prompt(observer, call_id, "callback-confirmed", timeout=15)
    ids = await redis.zrange(KEYS.record_index("callback"), 0, -1)
    request = json.loads(await redis.get(KEYS.record("callback", ids[0].decode())))
    assert request["number"] == "+12125550142" and request["own_number"] is False  # checked


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
    ids = await redis.zrange(KEYS.record_index("voicemail"), 0, -1)
    assert len(ids) == 1
    vm = json.loads(await redis.get(KEYS.record("voicemail", ids[0].decode())))
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
    assert len(await redis.zrange(KEYS.record_index("callback"), 0, -1)) == 1
    assert not await redis.exists(KEYS.operator("PJSIP/operator1"))


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
    assert not await redis.exists(KEYS.snapshot("hold", call_id))
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
    await callers.hang_up(ours)


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
    await callers.hang_up(ours)


@pytest.mark.policy('[hold]\ncheck_in_interval = 10\nfallback_after = 60\n')
async def test_given_hold_when_check_in_plays_then_caller_hears_music_prompt_music_without_dead_air(
        app, app_runner, parties, ari, spool):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    await wait_prompt(observer, call_id, "hold-intro", "PlaybackStarted")
    # what the caller hears from the intro on: why they wait, ~10 s of music (the first on this
    # call: a track from its start), the 6.4 s check-in, music (the next check-in is due 10 s
    # after this one started, near the recording's end)
    levels, t0 = await record_heard_since(callers, ours, 30, spool)
    intro = await wait_prompt(observer, call_id, "hold-intro")
    start = await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted")
    end = await wait_prompt(observer, call_id, "checkin-1")
    h, i, j = (int((e["_t"] - t0) * 10) for e in (intro, start, end))  # 100 ms windows
    assert 5 < h < i - 80 and i < j and j + 28 <= len(levels), (h, i, j, len(levels))

    assert_music(levels[h + 2:i - 2], "before the check-in")
    checkin = sorted(levels[i + 2:j - 2])
    assert checkin[len(checkin) // 2] > MUSIC[1], f"the check-in was not heard: {levels[i:j]}"
    assert_music(levels[j + 8:j + 28], "after the check-in (music must come back)")
    # and no dead air anywhere, the switches prompt -> music -> prompt -> music included: the
    # whole recording as one sequence (from its first 0.5 s, while the snoop's audio starts)
    silent = longest_silence(levels[5:])
    assert silent <= DEAD_AIR_WINDOWS, f"{silent * 100} ms of dead air: {levels}"
    await callers.hang_up(ours)


def test_given_the_music_the_sandbox_plays_when_read_as_a_caller_hears_it_then_no_track_has_dead_air(
        sandbox):
    """Every track Asterisk plays on hold, as the sandbox installed it (trimmed as an admin's
    `ari-etiquette music trim` does): sound in its first 100 ms, and nowhere a quiet passage
    as long as the dead air the recordings of callers are checked for. Asterisk plays a track
    from its start and one after another, so a track's quiet is the caller's."""
    instance, _ = sandbox
    tracks = sorted((instance.root / "usr/share/asterisk/moh").glob("*.wav"))
    assert len(tracks) == 5, tracks  # Debian's asterisk-moh-opsound-wav
    for track in tracks:
        levels = rms_windows(track)
        assert levels[0] >= SILENCE, (track.name, levels[:5])
        quiet = longest_silence(levels)
        assert quiet < DEAD_AIR_WINDOWS, f"{track.name}: {quiet * 100} ms quiet"


@pytest.mark.policy('[hold]\ncheck_in_interval = 10\nfallback_after = 60\n')
async def test_given_interval_longer_than_check_ins_when_on_hold_then_check_ins_start_every_interval(
        app, app_runner, parties, ari):
    """Check-ins last 6-7 s: with a 10 s interval each starts 10 s after the previous one
    started (counted from its end, they came 16-17 s apart)."""
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    intro = await wait_prompt(observer, call_id, "hold-intro")
    starts = []
    for prompt in ("checkin-1", "checkin-2", "checkin-3"):
        starts.append(await wait_prompt(observer, call_id, prompt, "PlaybackStarted",
                                        after=starts[-1]["_t"] if starts else intro["_t"]))
    # the first the interval after the music started (the announcement's end) ...
    assert abs(starts[0]["_t"] - intro["_t"] - 10.0) < 0.5, starts[0]["_t"] - intro["_t"]
    # ... the next ones start to start
    gaps = [b["_t"] - a["_t"] for a, b in zip(starts, starts[1:])]
    assert all(abs(gap - 10.0) < 0.5 for gap in gaps), gaps
    # each heard to the end, with music between
    for prompt, start in zip(("checkin-1", "checkin-2"), starts):
        end = await wait_prompt(observer, call_id, prompt, after=start["_t"])
        assert end["playback"]["state"] == "done", end["playback"]
    await callers.hang_up(ours)


SHIPPED_HOLD = ("[hold]\ncheck_in_interval = 25\nfallback_after = 150\n"
                "fallback_choice_timeout = 8\nmenu_repeat_after = 4\n")


@pytest.mark.timeout(240)
@pytest.mark.policy(SHIPPED_HOLD)
async def test_given_shipped_hold_times_when_on_hold_then_a_check_in_every_25_s_and_the_way_out_at_150_s(
        app, app_runner, parties, ari):
    """The shipped times as they are (no shrunk times; about 2.5 minutes): callers and admins
    read "every 25 s" start to start, each check-in unlike the one before, and at 150 s on hold
    (the guides' 2-3 minutes, before most callers would have hung up) the way out: keep
    holding, a message or a callback, said once more after 4 s without a key, then the
    default. Counted from the end of each 6 s check-in, they came 31-32 s apart."""
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    intro = await wait_prompt(observer, call_id, "hold-intro")
    first = await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted", timeout=35,
                              after=intro["_t"])
    assert abs(first["_t"] - intro["_t"] - 25.0) < 0.5, first["_t"] - intro["_t"]
    first_end = await wait_prompt(observer, call_id, "checkin-1", after=first["_t"])
    menu = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                             timeout=160, after=first["_t"])

    [held] = [e for e in await timeline(app, call_id) if e["event"] == "hold started"]
    assert 149.5 <= menu["_t"] - held["t"] <= 151.5, menu["_t"] - held["t"]
    check_ins = sorted((e for e in observer.of_type("PlaybackStarted")
                        if prompt_of(e).startswith("checkin")
                        and e["playback"]["target_uri"] == f"channel:{call_id}"),
                       key=lambda e: e["_t"])
    starts = [e["_t"] for e in check_ins]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(check_ins) == 5 and all(24.5 <= g <= 25.5 for g in gaps), gaps
    assert starts[1] - first_end["_t"] < 25.0 - 4.0, "counted from the check-in's end"
    heard = [prompt_of(e) for e in check_ins]
    assert all(a != b for a, b in zip(heard, heard[1:])), heard
    assert menu["_t"] - starts[-1] <= 25.5, "no more than a check-in's interval without a word"
    notes = [e for e in await timeline(app, call_id) if e["event"] == "check-in"]
    assert [n["prompt"] for n in notes] == heard
    # no key: the menu once more 4 s after it ended, then at most 5 s (the choice timeout is
    # 8) before the default, a callback to the number they call from
    menu_end = await wait_prompt(observer, call_id, "hold-fallback-menu", after=menu["_t"],
                                 timeout=20)
    again = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              after=menu_end["_t"])
    assert 3.5 < again["_t"] - menu_end["_t"] < 4.8, again["_t"] - menu_end["_t"]
    again_end = await wait_prompt(observer, call_id, "hold-fallback-menu", after=again["_t"],
                                  timeout=20)
    await wait_prompt(observer, call_id, "callback-confirmed", timeout=20, after=again_end["_t"])
    [ended] = [e for e in await timeline(app, call_id) if e["event"] == "hold ended"]
    assert 4.5 < ended["t"] - again_end["_t"] < 6.0, ended["t"] - again_end["_t"]
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller released")


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
    assert await redis.zcard(KEYS.record_index("callback")) == 0
    await callers.hang_up(ours)


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
    assert not await redis.exists(KEYS.snapshot("hold", call_id))
    assert not await redis.sismember(KEYS.live_calls(), call_id)
    ended = [e for e in await timeline(app, call_id) if e["event"] == "hold ended"]
    assert ended and ended[-1]["outcome"] == "caller hung up"
    if state == "voicemail":  # a caller who hangs up instead of pressing # keeps their message
        assert await redis.zcard(KEYS.record_index("voicemail")) == 1
    # the app fixture then checks that no channel (snoop included), bridge, lane or timer is left


# --- only numbers that pass the one check are called back (toll fraud) -------------------------
def _dialable_policy() -> str:
    """Open all week, quiet hours far from now, customers dialled as simulated phones, so the
    dialer (running in these tests) would ring at once anything it was handed."""
    from test_callback import OPEN_ALL_WEEK, quiet_hours_away_from_now

    return ("[business_hours]\n" + OPEN_ALL_WEEK + quiet_hours_away_from_now()
            + '[callback]\ndial = "Local/{number}@sandbox-phones"\n')


async def _nothing_stored_or_dialled(redis, observer, number_digits: str, settle: float = 2.5):
    """No callback request in Redis, and no callback call nor any channel to the number
    (the observer sees every channel), with the dialer running for a moment."""
    # a fixed wait on purpose: it proves nothing is dialled while the dialer (a round every
    # second) runs for a while; there is no event for "nothing happened"
    await asyncio.sleep(settle)
    assert await redis.zcard(KEYS.record_index("callback")) == 0
    marker = KEYS.callback_attempts_indexed().encode()  # the dialer's, set once per Redis
    assert [k for k in await redis.keys(f"{KEYS.prefix}:{{callback}}:*") if k != marker] == []
    created = [e["channel"] for e in observer.of_type("ChannelCreated")]
    assert not [c["id"] for c in created if c["id"].startswith("cb-")], "a callback was dialled"
    assert not [c["name"] for c in created if number_digits in c.get("name", "")
                or number_digits in (c.get("dialplan") or {}).get("exten", "")]


async def _refused_on_keypad(app, app_runner, parties, ari, redis, keys: str) -> tuple:
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="3")
    await wait_prompt(observer, call_id, "callback-own-number", "PlaybackStarted")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf=keys, between=150)
    refused = await wait_prompt(observer, call_id, "callback-number-refused", "PlaybackStarted")
    # said why, and asked again (the caller ID may still be chosen)
    await wait_prompt(observer, call_id, "callback-number-refused", timeout=20)
    assert media_of(observer, refused["playback"]["id"]) == [
        "sound:etiquette/callback-number-refused", "sound:etiquette/callback-own-number"]
    notes = [e for e in await timeline(app, call_id) if e["event"] == "callback number refused"]
    assert len(notes) == 1 and notes[0]["digits"] == keys.rstrip("#")
    return ours, call_id, notes[0]


@pytest.mark.dialer
@pytest.mark.policy(_dialable_policy())
async def test_keypad_emergency_number_refused(app, app_runner, parties, ari, redis):
    """9 1 1 # on hold: refused aloud, asked again twice, then a message; never stored or
    dialled."""
    callers, phones, observer = parties
    ours, call_id, note = await _refused_on_keypad(app, app_runner, parties, ari, redis, "911#")
    assert "emergency" in note["why"]
    again = time.time()
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="911#", between=150)  # twice more
    second = await wait_prompt(observer, call_id, "callback-number-refused", "PlaybackStarted",
                               after=again)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="911#", between=150)
    message = await wait_prompt(observer, call_id, "voicemail-intro", "PlaybackStarted",
                                after=second["_t"])
    await wait_prompt(observer, call_id, "voicemail-intro", after=second["_t"], timeout=20)
    assert media_of(observer, message["playback"]["id"])[:2] == [
        "sound:etiquette/callback-number-refused", "sound:etiquette/callback-voicemail-instead"]
    await _nothing_stored_or_dialled(redis, observer, "911")
    await ari.hangup(ours)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller gone")


@pytest.mark.dialer
@pytest.mark.policy(_dialable_policy())
async def test_keypad_premium_number_refused(app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id, note = await _refused_on_keypad(app, app_runner, parties, ari, redis,
                                                   "9005550100#")
    assert "premium-rate" in note["why"]
    await _nothing_stored_or_dialled(redis, observer, "9005550100")
    await ari.hangup(ours)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller gone")


@pytest.mark.dialer
@pytest.mark.policy(_dialable_policy())
async def test_keypad_satellite_number_refused(app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id, note = await _refused_on_keypad(app, app_runner, parties, ari, redis,
                                                   "011881612345678#")  # Iridium, from the US
    assert "satellite" in note["why"]
    await _nothing_stored_or_dialled(redis, observer, "881612345678")
    await ari.hangup(ours)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller gone")


@pytest.mark.dialer
@pytest.mark.policy(_dialable_policy())
async def test_premium_caller_id_not_called_back(app, app_runner, parties, ari, redis):
    """A spoofed premium-rate caller ID, no key pressed at the fallback: a message, never a
    callback to the caller ID."""
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100", number="+19005550100", name="Spoofed")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    menu = await wait_prompt(observer, call_id, "hold-fallback-menu", timeout=30)
    # no key: the menu once more (2 s, then 8 s of menu), then 3 s, then the default
    await wait_prompt(observer, call_id, "voicemail-intro", "PlaybackStarted", timeout=25,
                      after=menu["_t"])
    assert not any(prompt_of(e) == "callback-confirmed"
                   for e in observer.of_type("PlaybackStarted"))
    choice = [e for e in await timeline(app, call_id) if e["event"] == "fallback choice"]
    assert choice[-1]["choice"] == "voicemail" and choice[-1]["chosen"] == "default"
    await _nothing_stored_or_dialled(redis, observer, "9005550100")
    await ari.hangup(ours)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller gone")
