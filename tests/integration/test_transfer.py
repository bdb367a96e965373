"""Announced, verified transfers and supervisor escalation against the real Asterisk, with the
policy's times shrunk (the caller's choice 2 s, the target rings 4 s, accepts within 3 s; a
menu with no key is said once more after 2 s, and those times count from the repeat's end).

The directory's "billing" department is the simulated desk phone operator2; the supervisor is
supervisor1. Every path asserts what the caller, the operator and the target heard (in order),
who ends up bridged with whom, the timeline, and (in the fixture) that nothing leaked.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from ari_app.ari import operations as ops
from ari_app.callback.window import spoken_window
from ari_app.inbound.keys import inbound_key

from conftest import API_TOKEN
from harness import SILENCE, rms_windows
from test_first_call import prompt_of, talk_bridge_with
from test_hold import SHIPPED_HOLD, connected_call, media_of, played, timeline, wait_prompt
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration

ATTENDED = "[transfer]\nmode = \"attended\"\n"


async def press(ari, channel: str, keys: str) -> None:
    await ari.call(ops.SEND_DTMF, channelId=channel, dtmf=keys, between=150)


async def continue_transfer(ari, observer, ours: str, call_id: str) -> None:
    """The caller presses 1 as soon as the announcement starts (the no-key path is tested
    once, in full)."""
    await wait_prompt(observer, call_id, "transfer-announce", "PlaybackStarted", timeout=15)
    await press(ari, ours, "1")


async def target_answers(phones, observer, call_id: str, phone: str = "operator2") -> str:
    """Wait until the target's desk phone answered and its leg is in the app; its leg id."""
    leg = f"{call_id}~tx1"
    await observer.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                            and e["channel"]["id"] == leg and e["channel"]["state"] == "Up",
                            timeout=40, what="target answered")
    return leg


def heard_in_order(observer, channel: str) -> list[str]:
    """The prompts a party heard, one entry per playback (a multi-media one counts once)."""
    seen: list[str] = []
    ids: set[str] = set()
    for prompt, _, event in played(observer, channel):
        if event["playback"]["id"] not in ids:
            ids.add(event["playback"]["id"])
            seen.append(prompt)
    return seen


async def transfer_events(app, call_id: str) -> list[str]:
    return [e["event"] for e in await timeline(app, call_id) if e["rule"] == "transfer"]


async def test_given_announced_transfer_when_caller_waits_and_target_accepts_then_caller_is_with_target(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)

    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/transfer",
                                        {"target": "billing", "reason": "question"})
    assert (status, body["status"]) == (202, "transferring")

    # 1-2: to whom and why, the direct number, and the way to decline
    announce = await wait_prompt(observer, call_id, "transfer-announce", timeout=40)
    assert media_of(observer, announce["playback"]["id"]) == [
        "sound:etiquette/transfer-announce", "sound:etiquette/directory-billing",
        "sound:etiquette/transfer-why", "sound:etiquette/transfer-direct-number",
        "digits:4100", "sound:etiquette/transfer-menu"]
    talk = next(b for b in await ari.bridges() if b["id"] == f"{call_id}~talk")
    assert talk["channels"] == [f"{call_id}~op1"], "the caller is out of the conversation"
    # no key: after 2 s of silence the menu (only the question) is said once more
    again = await wait_prompt(observer, call_id, "transfer-announce", "PlaybackStarted",
                              after=announce["_t"])
    assert again["playback"]["id"] != announce["playback"]["id"]
    assert 1.5 < again["_t"] - announce["_t"] < 2.8, again["_t"] - announce["_t"]
    again_end = await wait_prompt(observer, call_id, "transfer-announce", after=again["_t"])
    assert media_of(observer, again["playback"]["id"]) == ["sound:etiquette/transfer-menu"]
    # 3: still no key = continue: what to expect and thanks; the operator is freed at once
    expect = await wait_prompt(observer, call_id, "transfer-expect", "PlaybackStarted",
                               after=again_end["_t"])
    assert 1.5 < expect["_t"] - again_end["_t"] < 3.0, "the choice waited for the timeout"
    await wait_prompt(observer, f"{call_id}~op1", "operator-freed-transfer")
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator freed")
    # 4: the target hears who is calling and why before anybody is connected
    leg = await target_answers(phones, observer, call_id)
    intro = await wait_prompt(observer, leg, "transfer-intro-to-target")
    assert media_of(observer, intro["playback"]["id"]) == [
        "sound:etiquette/transfer-intro-to-target", "digits:12125550123",
        "sound:etiquette/transfer-reason-question", "sound:etiquette/transfer-target-menu"]
    assert not [p for p, _, _ in played(observer, leg) if p != "transfer-intro-to-target"]
    await press(ari, phones.answered["operator2"], "1")
    # thanks, then connected with the target; the recording notice is repeated to both
    await wait_prompt(observer, call_id, "transfer-connecting", after=intro["_t"])
    await talk_bridge_with(ari, call_id, leg)
    notice = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted" and prompt_of(e) == "recording-notice"
        and e["playback"]["target_uri"] == f"bridge:{call_id}~talk", what="notice to both")
    assert notice["playback"]["media_uri"] == "sound:etiquette/recording-notice"

    heard = heard_in_order(observer, call_id)
    assert heard[:2] == ["greeting", "recording-notice"] and heard[-1] == "transfer-connecting"
    middle = heard[2:-1]  # the transfer's check-ins while the target's phone rang
    assert middle[:3] == ["transfer-announce", "transfer-announce", "transfer-expect"], heard
    assert all(p.startswith("transfer-checkin-") for p in middle[3:]), heard
    await app[inbound_key].lanes.join()
    call = json.loads(await redis.get(KEYS.call(call_id)))
    assert (call["state"], call["operator_channel"], call["operator"]) == (
        "connected", leg, "PJSIP/operator2")
    assert not await redis.exists(KEYS.operator("PJSIP/operator1")), "operator1 is free again"
    events = await transfer_events(app, call_id)
    assert events[:5] == ["transfer started", "menu repeated", "transfer choice",
                          "target dialed", "target answered"]
    assert events[-2:] == ["target accepted", "transfer ended"]
    ended = [e for e in await timeline(app, call_id) if e["event"] == "transfer ended"][-1]
    assert ended["outcome"] == "connected"
    await callers.hang_up(ours)


async def test_given_announcement_when_caller_presses_2_then_stays_with_operator_who_is_told(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "21"})
    started = await wait_prompt(observer, call_id, "transfer-announce", "PlaybackStarted")
    await press(ari, ours, "2")

    await wait_prompt(observer, f"{call_id}~op1", "transfer-declined-operator")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    assert not [e for e in observer.of_type("StasisStart") if e["channel"]["id"] == f"{call_id}~tx1"]
    assert "operator2" not in phones.answered, "nobody was dialed"
    assert [p for p, t, _ in played(observer, call_id) if t >= started["_t"]] == ["transfer-announce"]
    await app[inbound_key].lanes.join()
    choice = [e for e in await timeline(app, call_id) if e["event"] == "transfer choice"][0]
    assert choice["choice"] == "stay"
    assert json.loads(await redis.get(KEYS.call(call_id)))["state"] == "connected"
    await callers.hang_up(ours)


async def test_given_announced_transfer_when_target_declines_then_unavailable_number_again_and_callback(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    await wait_prompt(observer, leg, "transfer-intro-to-target", "PlaybackStarted")
    await press(ari, phones.answered["operator2"], "2")

    # the operator already left: not available, the direct number again, voicemail or callback
    offer = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              timeout=15)
    await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                            and e["playback"]["id"] == offer["playback"]["id"], timeout=30,
                            what="offer")
    assert media_of(observer, offer["playback"]["id"]) == [
        "sound:etiquette/transfer-unavailable", "sound:etiquette/transfer-direct-number-again",
        "digits:4100", "sound:etiquette/operator-gone-menu"]
    await press(ari, ours, "3")
    await wait_prompt(observer, call_id, "callback-own-number", "PlaybackStarted")
    await press(ari, ours, "1")
    await wait_prompt(observer, call_id, "callback-confirmed", timeout=15)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller released")
    await app[inbound_key].lanes.join()
    [request_id] = [i.decode() for i in await redis.zrange(KEYS.record_index("callback"), 0, -1)]
    request = json.loads(await redis.get(KEYS.record("callback", request_id)))
    assert (request["number"], request["for_whom"], request["call_id"], request["source"]) == (
        "+12125550123", "billing", call_id, "transfer-fallback")
    failed = [e for e in await timeline(app, call_id) if e["event"] == "transfer failed"][0]
    assert failed["cause"] == "declined by the target"


async def test_given_announced_transfer_when_target_presses_no_key_then_menu_said_twice_then_not_verified(
        app, app_runner, parties, ari, redis):
    """An answering machine or a voicemail box: the target's menu is said once more after 2 s,
    then 3 s (accept_timeout) from the repeat's end without a key is a failed transfer."""
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    intro = await wait_prompt(observer, leg, "transfer-intro-to-target")
    again = await wait_prompt(observer, leg, "transfer-intro-to-target", "PlaybackStarted",
                              after=intro["_t"])
    assert again["playback"]["id"] != intro["playback"]["id"]
    assert 1.5 < again["_t"] - intro["_t"] < 2.8, again["_t"] - intro["_t"]
    assert again["playback"]["media_uri"] == "sound:etiquette/transfer-target-menu"
    again_end = await wait_prompt(observer, leg, "transfer-intro-to-target", after=again["_t"])
    # the caller, not the target, then hears that the person is not available, and the way out
    offer = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              timeout=15, after=again_end["_t"])
    await app[inbound_key].lanes.join()
    failed = [e for e in await timeline(app, call_id) if e["event"] == "transfer failed"][0]
    assert failed["cause"] == "not verified (no key)"
    assert 2.5 < failed["t"] - again_end["_t"] < 3.8, failed["t"] - again_end["_t"]
    assert offer["_t"] > again_end["_t"]
    intros = {e["playback"]["id"] for p, _, e in played(observer, leg)
              if p == "transfer-intro-to-target"}
    assert len(intros) == 2, intros
    repeats = [e for e in await timeline(app, call_id) if e["event"] == "menu repeated"]
    assert [(r["party"], r["prompt"]) for r in repeats] == [
        ("target", "transfer-intro-to-target")]  # the caller pressed 1 at once
    await callers.hang_up(ours)


SHIPPED_TIMES = ("ring_timeout = 20\nchoice_timeout = 6\naccept_timeout = 10\n"
                 "menu_repeat_after = 4\n")
SHIPPED_ANNOUNCED = '[transfer]\nmode = "announced"\n' + SHIPPED_TIMES
SHIPPED_ATTENDED = '[transfer]\nmode = "attended"\n' + SHIPPED_TIMES


@pytest.mark.policy(SHIPPED_ANNOUNCED)
async def test_given_shipped_times_when_nobody_presses_a_key_then_each_menu_said_again_at_4_s_and_at_most_5_s_more(
        app, app_runner, parties, ari, redis):
    """The shipped times as they are: the caller's 1/2/3 is said once more 4 s after it ended,
    then no key for 5 s (choice_timeout 6, but silence never lasts more than 5 s) continues the
    transfer; the target's 1/2 likewise (accept_timeout 10), then not verified: the caller
    hears the person is not available and the way out."""
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    announce = await wait_prompt(observer, call_id, "transfer-announce", timeout=40)
    again = await wait_prompt(observer, call_id, "transfer-announce", "PlaybackStarted",
                              after=announce["_t"])
    assert 3.5 < again["_t"] - announce["_t"] < 4.8, again["_t"] - announce["_t"]
    assert media_of(observer, again["playback"]["id"]) == ["sound:etiquette/transfer-menu"]
    again_end = await wait_prompt(observer, call_id, "transfer-announce", after=again["_t"])
    expect = await wait_prompt(observer, call_id, "transfer-expect", "PlaybackStarted",
                               after=again_end["_t"])
    assert 4.5 < expect["_t"] - again_end["_t"] < 6.0, expect["_t"] - again_end["_t"]

    leg = await target_answers(phones, observer, call_id)
    intro = await wait_prompt(observer, leg, "transfer-intro-to-target")
    repeat = await wait_prompt(observer, leg, "transfer-intro-to-target", "PlaybackStarted",
                               after=intro["_t"])
    assert 3.5 < repeat["_t"] - intro["_t"] < 4.8, repeat["_t"] - intro["_t"]
    assert repeat["playback"]["media_uri"] == "sound:etiquette/transfer-target-menu"
    repeat_end = await wait_prompt(observer, leg, "transfer-intro-to-target", after=repeat["_t"])
    offer = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              timeout=20, after=repeat_end["_t"])
    await wait_prompt(observer, call_id, "hold-fallback-menu", after=offer["_t"])  # to its end
    assert media_of(observer, offer["playback"]["id"])[:3] == [
        "sound:etiquette/transfer-unavailable", "sound:etiquette/transfer-direct-number-again",
        "digits:4100"]
    await app[inbound_key].lanes.join()
    failed = [e for e in await timeline(app, call_id) if e["event"] == "transfer failed"][0]
    assert failed["cause"] == "not verified (no key)"
    assert 4.5 < failed["t"] - repeat_end["_t"] < 6.0, failed["t"] - repeat_end["_t"]
    repeats = [(r["party"], r["prompt"]) for r in await timeline(app, call_id)
               if r["event"] == "menu repeated"]
    assert repeats == [("caller", "transfer-announce"), ("target", "transfer-intro-to-target")]
    await callers.hang_up(ours)


@pytest.mark.policy(SHIPPED_ANNOUNCED)
async def test_given_shipped_times_when_the_target_never_answers_then_20_s_of_ringing_and_the_caller_hears_so(
        app, app_runner, parties, ari, redis):
    """The target's phone rings the shipped 20 s (Asterisk's own timeout, the app's guard 2 s
    behind it), then the caller hears at once that the person is not available, their direct
    number, and the way out: under 25 s after "what to expect" ended, on music meanwhile."""
    callers, phones, observer = parties
    phones.mode["operator2"] = "ignore"
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    offer = await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted",
                              timeout=40)
    await app[inbound_key].lanes.join()
    events = await timeline(app, call_id)
    dialed = next(e for e in events if e["event"] == "target dialed")
    failed = next(e for e in events if e["event"] == "transfer failed")
    assert 19.5 < failed["t"] - dialed["t"] < 22.5, failed["t"] - dialed["t"]
    assert offer["_t"] - failed["t"] < 1.0, "said at once"
    await wait_prompt(observer, call_id, "hold-fallback-menu", after=offer["_t"])  # to its end
    assert media_of(observer, offer["playback"]["id"])[:3] == [
        "sound:etiquette/transfer-unavailable", "sound:etiquette/transfer-direct-number-again",
        "digits:4100"]
    # what to expect and thanks, then music: the next word (the offer) within 25 s of its end
    expect_end = await wait_prompt(observer, call_id, "transfer-expect", after=dialed["t"] - 1)
    assert offer["_t"] - expect_end["_t"] < 25.0, offer["_t"] - expect_end["_t"]
    await callers.hang_up(ours)


@pytest.mark.policy(ATTENDED)
async def test_given_attended_transfer_when_target_does_not_answer_then_caller_back_with_operator(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    phones.mode["operator2"] = "ignore"
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)

    back = await wait_prompt(observer, call_id, "transfer-back-to-operator", timeout=40)
    assert media_of(observer, back["playback"]["id"]) == [
        "sound:etiquette/transfer-unavailable", "sound:etiquette/transfer-direct-number-again",
        "digits:4100", "sound:etiquette/transfer-back-to-operator"]
    await wait_prompt(observer, f"{call_id}~op1", "transfer-failed-operator")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    # music while it rang, then nothing left ringing
    assert [c["id"] for c in await ari.channels() if c["id"].startswith(f"{call_id}~tx")] == []
    await app[inbound_key].lanes.join()
    failed = [e for e in await timeline(app, call_id) if e["event"] == "transfer failed"][0]
    assert failed["cause"] == "no answer" or "answer" in failed["cause"], failed
    assert json.loads(await redis.get(KEYS.call(call_id)))["state"] == "connected"
    await callers.hang_up(ours)


@pytest.mark.policy(ATTENDED)
async def test_given_attended_transfer_when_target_busy_then_caller_back_with_operator(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    phones.mode["operator2"] = "busy"
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)

    await wait_prompt(observer, call_id, "transfer-back-to-operator", timeout=40)
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await app[inbound_key].lanes.join()
    failed = [e for e in await timeline(app, call_id) if e["event"] == "transfer failed"][0]
    assert failed["cause"] != "no answer (timeout)", failed
    await callers.hang_up(ours)


async def test_given_target_ringing_when_caller_hangs_up_then_target_leg_cancelled(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    phones.mode["operator2"] = "ignore"
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDialplan"
                            and e["channel"]["name"].startswith("PJSIP/operator2")
                            or e.get("type") == "ChannelCreated"
                            and e["channel"]["id"] == f"{call_id}~tx1", timeout=15,
                            what="target ringing")
    await callers.hang_up(ours)

    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~tx1", what="target cancelled")
    await app[inbound_key].lanes.join()
    ended = [e for e in await timeline(app, call_id) if e["event"] == "transfer ended"][0]
    assert ended["outcome"] == "caller hung up"


@pytest.mark.policy(ATTENDED)
async def test_given_consultation_when_operator_hangs_up_then_caller_connected_to_target(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    await talk_bridge_with(ari, f"{call_id}~op1", leg)  # consulting; the caller on music
    await ari.hangup(phones.answered["operator1"])

    await wait_prompt(observer, call_id, "transfer-connecting", timeout=15)
    await talk_bridge_with(ari, call_id, leg)
    await app[inbound_key].lanes.join()
    events = await transfer_events(app, call_id)
    assert "operator left" in events and events[-1] == "transfer ended"
    await callers.hang_up(ours)


@pytest.mark.policy(ATTENDED)
async def test_given_consultation_when_operator_completes_by_rest_then_caller_connected_to_target(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    await talk_bridge_with(ari, f"{call_id}~op1", leg)
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/transfer/complete")
    assert status == 202

    await talk_bridge_with(ari, call_id, leg)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator left")
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/transfer/complete")
    assert (status, body["error_id"]) == (409, "wrong-call-state")
    await callers.hang_up(ours)


async def consulting_long(app_runner, parties, ari, timeout: float = 30
                          ) -> tuple[str, str, str, dict]:
    """Attended: the target answered and the operator consults them, the caller on music
    until the way out (fallback_after from the target's dial: 7 s in the test policy) is
    offered and said: the caller, the call, the target's leg, and the offer's start."""
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    await talk_bridge_with(ari, f"{call_id}~op1", leg)  # consulting
    offer = await wait_prompt(observer, call_id, "transfer-way-out", "PlaybackStarted",
                              timeout=timeout)
    await wait_prompt(observer, call_id, "transfer-way-out", after=offer["_t"])  # said to its end
    assert media_of(observer, offer["playback"]["id"]) == [
        "sound:etiquette/transfer-way-out", "sound:etiquette/operator-gone-menu"]
    return ours, call_id, leg, offer


async def operator_completes(app, app_runner, ari, call_id: str, leg: str) -> None:
    """The operator completes the consultation by REST: the caller talks with the target."""
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/transfer/complete")
    assert status == 202
    await talk_bridge_with(ari, call_id, leg)
    await app[inbound_key].lanes.join()
    ended = [e for e in await timeline(app, call_id) if e["event"] == "transfer ended"][-1]
    assert ended["outcome"] == "connected"


@pytest.mark.policy(ATTENDED)
async def test_given_a_long_consultation_when_caller_chooses_a_callback_then_staff_told_and_let_go_and_the_callback_is_for_the_target(
        app, app_runner, parties, ari, redis):
    """The hold rule's way out after 2-3 minutes holds while an operator consults, too: the
    caller chooses 3, the operator and the target each hear why and are let go, and the
    caller gives their number for a callback from the target."""
    callers, phones, observer = parties
    ours, call_id, leg, offer = await consulting_long(app_runner, parties, ari)
    await app[inbound_key].lanes.join()
    dialed = next(e for e in await timeline(app, call_id) if e["event"] == "target dialed")
    # due 7 s after the dial; a check-in playing then is said to its end first
    assert 6.5 < offer["_t"] - dialed["t"] < 16.0, offer["_t"] - dialed["t"]
    await press(ari, ours, "3")

    told_operator = await wait_prompt(observer, f"{call_id}~op1", "transfer-caller-left-operator")
    await wait_prompt(observer, leg, "transfer-caller-left-target")
    for channel in (f"{call_id}~op1", leg):
        await observer.wait_for(lambda e, c=channel: e.get("type") == "ChannelDestroyed"
                                and e["channel"]["id"] == c, what=f"{channel} let go")
    assert not [b for b in await ari.bridges() if b["id"] == f"{call_id}~consult"]
    # the caller chose already: straight to the number, no menu again
    own = await wait_prompt(observer, call_id, "callback-own-number", "PlaybackStarted",
                            timeout=15)
    assert own["_t"] >= told_operator["_t"] - 1.0
    await press(ari, ours, "1")
    await wait_prompt(observer, call_id, "callback-confirmed", timeout=15)
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller released")
    await app[inbound_key].lanes.join()

    heard = heard_in_order(observer, call_id)
    assert "hold-fallback-menu" not in heard and heard.count("transfer-way-out") == 1, heard
    [request_id] = [i.decode() for i in await redis.zrange(KEYS.record_index("callback"), 0, -1)]
    request = json.loads(await redis.get(KEYS.record("callback", request_id)))
    assert (request["number"], request["for_whom"], request["call_id"]) == (
        "+12125550123", "billing", call_id)
    events = await timeline(app, call_id)
    [choice] = [e for e in events if e["event"] == "transfer choice"
                and e.get("during") == "consultation"]
    assert choice["choice"] == "callback"
    ended = [e for e in events if e["event"] == "transfer ended"][-1]
    assert ended["outcome"] == "caller-left"


@pytest.mark.policy(ATTENDED)
async def test_given_a_long_consultation_when_caller_presses_no_key_then_keys_said_again_and_the_transfer_completes(
        app, app_runner, parties, ari, redis):
    """No key is staying on the line: the next check-in says the keys again, and the
    operator's completion still connects the caller with the target."""
    callers, phones, observer = parties
    ours, call_id, leg, offer = await consulting_long(app_runner, parties, ari)

    check_in = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted" and e["_t"] > offer["_t"]
        and prompt_of(e).startswith("transfer-checkin")
        and e["playback"]["target_uri"] == f"channel:{call_id}", timeout=30,
        what="a check-in after the offer")
    await wait_prompt(observer, call_id, prompt_of(check_in), after=check_in["_t"])
    assert media_of(observer, check_in["playback"]["id"])[-1] == \
        "sound:etiquette/operator-gone-menu"
    await operator_completes(app, app_runner, ari, call_id, leg)
    await callers.hang_up(ours)


@pytest.mark.timeout(240)
@pytest.mark.policy(SHIPPED_HOLD + SHIPPED_ATTENDED)
async def test_given_shipped_times_when_a_consultation_runs_long_then_a_check_in_every_25_s_and_the_way_out_at_150_s(
        app, app_runner, parties, ari):
    """The shipped times as they are (about 2.5 minutes): a caller waiting while the operator
    consults the target hears what a caller on hold hears, check-ins 25 s apart, start to
    start, each unlike the one before, and 150 s after the target was dialed the way out (a
    check-in being said then is said to its end first). The operator still completes."""
    callers, phones, observer = parties
    ours, call_id, leg, offer = await consulting_long(app_runner, parties, ari, timeout=170)
    dialed = next(e for e in await timeline(app, call_id) if e["event"] == "target dialed")
    due = dialed["t"] + 150.0
    check_ins = sorted((e for e in observer.of_type("PlaybackStarted")
                        if prompt_of(e).startswith("transfer-checkin") and e["_t"] < offer["_t"]
                        and e["playback"]["target_uri"] == f"channel:{call_id}"),
                       key=lambda e: e["_t"])
    starts = [e["_t"] for e in check_ins]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(check_ins) >= 5 and all(24.5 <= g <= 25.5 for g in gaps), gaps
    heard = [prompt_of(e) for e in check_ins]
    assert all(a != b for a, b in zip(heard, heard[1:])), heard
    last_end = await wait_prompt(observer, call_id, heard[-1], after=starts[-1])
    if last_end["_t"] > due - 0.5:  # the last check-in was being said when the way out fell due
        assert 0 <= offer["_t"] - last_end["_t"] < 1.0, offer["_t"] - last_end["_t"]
    else:
        assert 149.5 <= offer["_t"] - dialed["t"] <= 151.5, offer["_t"] - dialed["t"]
    assert offer["_t"] - starts[-1] <= 25.5, "no more than a check-in's interval without a word"
    await operator_completes(app, app_runner, ari, call_id, leg)
    await callers.hang_up(ours)


async def test_given_escalation_allowed_when_operator_keys_supervisor_code_then_announced_transfer_to_supervisor(
        app, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await press(ari, phones.answered["operator1"], "*9")

    announce = await wait_prompt(observer, call_id, "transfer-announce", timeout=40)
    assert media_of(observer, announce["playback"]["id"])[1:5] == [
        "sound:etiquette/supervisor-name", "sound:etiquette/transfer-why",
        "sound:etiquette/transfer-direct-number", "digits:4190"]
    leg = await target_answers(phones, observer, call_id, "supervisor1")
    intro = await wait_prompt(observer, leg, "transfer-intro-to-target")
    assert "sound:etiquette/transfer-reason-escalation" in media_of(observer, intro["playback"]["id"])
    await press(ari, phones.answered["supervisor1"], "1")
    await talk_bridge_with(ari, call_id, leg)
    await app[inbound_key].lanes.join()
    requested = [e for e in await timeline(app, call_id) if e["event"] == "supervisor requested"][0]
    assert (requested["source"], requested["supervisor"]) == ("feature-code", "PJSIP/supervisor1")
    await callers.hang_up(ours)


@pytest.mark.policy("[supervisor]\nescalation_allowed = false\n")
async def test_given_escalation_not_allowed_when_requested_then_complaint_recorded_and_callback_promised(
        app, app_runner, parties, ari, redis, spool):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/escalate")
    assert status == 202

    told = await wait_prompt(observer, call_id, "complaint-record", timeout=15)
    assert media_of(observer, told["playback"]["id"]) == [
        "sound:etiquette/supervisor-unavailable", "sound:etiquette/complaint-record",
        "sound:etiquette/voicemail-intro", "sound:beep"]
    await observer.wait_for(lambda e: e.get("type") == "RecordingStarted"
                            and e["recording"]["name"].startswith(f"{call_id}~complaint-"),
                            timeout=15, what="the complaint's recording started")
    # the caller speaks (a recorded voice played into their own leg), then presses #
    await ari.play(ours, "sound:queue-thankyou", playback_id=f"speak-{ours}")
    await callers.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                           and e["playback"]["id"] == f"speak-{ours}", what="caller spoke")
    await press(ari, ours, "#")
    promise = await wait_prompt(observer, call_id, "complaint-saved", timeout=15)
    said = media_of(observer, promise["playback"]["id"])
    assert said[:2] == ["sound:etiquette/complaint-saved",
                        "sound:etiquette/supervisor-callback-within"], said
    await wait_prompt(observer, f"{call_id}~op1", "operator-complaint-recorded")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await app[inbound_key].lanes.join()
    [complaint_id] = [i.decode() for i in await redis.zrange(KEYS.record_index("complaint"), 0, -1)]
    complaint = json.loads(await redis.get(KEYS.record("complaint", complaint_id)))
    # what the caller said is kept: the recording exists and has their voice in it
    assert complaint["recording"].startswith(f"{call_id}~complaint-"), complaint
    assert complaint["duration"] >= 1, complaint
    path = spool / f"{complaint['recording']}.wav"
    assert path.exists() and path.stat().st_size > 8000, path
    levels = rms_windows(path)
    assert sum(level > SILENCE for level in levels) >= 5, f"no voice in the complaint: {levels}"
    # a supervisor lists it, listens to it, and closes it with what was done
    status, listed = await app_runner.api("GET", "/api/complaints?status=open")
    assert status == 200 and [c["id"] for c in listed["complaints"]] == [complaint_id], listed
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as http:
        async with http.get(f"{app_runner.base_url}/api/complaints/{complaint_id}/audio") as r:
            assert (r.status, r.content_type) == (200, "audio/wav")
            assert (await r.read()) == path.read_bytes()  # what the caller said, as recorded
    path.unlink()
    status, closed = await app_runner.api("POST", f"/api/complaints/{complaint_id}/close",
                                          {"resolution": "called back, sorted out"})
    assert (status, closed["status"], closed["closed_by"], closed["resolution"]) == (
        200, "closed", "api-token", "called back, sorted out"), closed
    status, again = await app_runner.api("POST", f"/api/complaints/{complaint_id}/close", {})
    assert (status, again["error_id"]) == (409, "complaint-closed"), again
    status, board = await app_runner.api("GET", "/api/dashboard")
    assert status == 200 and complaint_id not in [c["id"] for c in board["complaints"]]
    callback = json.loads(await redis.get(KEYS.record("callback", complaint['callback_id'])))
    assert (callback["for_whom"], callback["number"], callback["source"]) == (
        "supervisor", "+12125550123", "supervisor")
    # the promise is the policy's 60 minutes, or later when that falls outside business or
    # quiet hours; either way the caller heard the window the dialer is held to
    assert callback["latest_at"] - callback["created_at"] > 59 * 60
    heard = spoken_window(callback["latest_at"], callback["created_at"], "en")[2:]
    count, unit = int(said[2].split(":")[1]), said[3]
    assert unit == heard[1] and abs(count - int(heard[0].split(":")[1])) <= 1, (said, heard)
    why = [e for e in await timeline(app, call_id) if e["event"] == "complaint started"][0]
    assert why["why"] == "escalation not allowed by policy"
    # the complaint is on the customer's card, for the console of whoever talks to them next
    history = [json.loads(x) for x in await redis.lrange(KEYS.customer_history("+12125550123"),
                                                         0, -1)]
    [noted] = [e for e in history if e["event"] == "complaint recorded"]
    assert (noted["complaint"], noted["callback"]) == (complaint_id, complaint["callback_id"])
    await callers.hang_up(ours)


@pytest.mark.policy("[supervisor]\nescalation_allowed = false\n")
async def test_given_a_second_complaint_in_the_same_call_when_recorded_then_the_first_ones_recording_is_kept(
        app, app_runner, parties, ari, redis, spool):
    """After a complaint the caller is back with the operator and may complain again: the
    second recording is a file of its own, never written over the first one's words."""
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    names: list[str] = []
    for said in ("sound:queue-thankyou", "sound:etiquette/goodbye"):
        since = time.time()
        status, body = await app_runner.api("POST", f"/api/calls/{call_id}/escalate")
        assert status == 202, body
        started = await observer.wait_for(
            lambda e: e.get("type") == "RecordingStarted" and e["_t"] >= since
            and e["recording"]["name"].startswith(f"{call_id}~complaint-"), timeout=15,
            what="the complaint's recording started")
        names.append(started["recording"]["name"])
        spoke = f"speak{len(names)}-{ours}"
        await ari.play(ours, said, playback_id=spoke)
        await callers.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                               and e["playback"]["id"] == spoke, what="caller spoke")
        await press(ari, ours, "#")
        await wait_prompt(observer, call_id, "complaint-saved", timeout=15, after=since)
        await wait_prompt(observer, f"{call_id}~op1", "operator-complaint-recorded", after=since)
        await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await app[inbound_key].lanes.join()
    assert names[0] != names[1], names
    complaints = [json.loads(await redis.get(KEYS.record("complaint", i.decode())))
                  for i in await redis.zrange(KEYS.record_index("complaint"), 0, -1)]
    assert sorted(c["recording"] for c in complaints) == sorted(names), complaints
    files = [(spool / f"{name}.wav").read_bytes() for name in names]
    assert files[0] != files[1], "the second complaint was recorded over the first"
    for name in names:  # each still has the caller's words in it
        levels = rms_windows(spool / f"{name}.wav")
        assert sum(level > SILENCE for level in levels) >= 3, f"no voice in {name}: {levels}"
        (spool / f"{name}.wav").unlink()
    await callers.hang_up(ours)


@pytest.mark.policy("[supervisor]\nescalation_allowed = false\n")
async def test_given_premium_caller_id_when_complaint_recorded_then_kept_but_no_callback_promised(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100", number="+19005550100", name="Spoofed")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/escalate")
    assert status == 202

    told = await wait_prompt(observer, call_id, "complaint-record", timeout=15)
    assert media_of(observer, told["playback"]["id"])[1] == (
        "sound:etiquette/complaint-record-no-callback")  # no "who will call you back"
    # the caller says nothing: the recording ends on silence
    saved = await wait_prompt(observer, call_id, "complaint-saved", timeout=25)
    assert media_of(observer, saved["playback"]["id"]) == ["sound:etiquette/complaint-saved"]
    await wait_prompt(observer, f"{call_id}~op1", "operator-complaint-recorded-no-callback")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await app[inbound_key].lanes.join()
    [complaint_id] = [i.decode() for i in await redis.zrange(KEYS.record_index("complaint"), 0, -1)]
    complaint = json.loads(await redis.get(KEYS.record("complaint", complaint_id)))
    assert complaint["caller_number"] == "+19005550100" and complaint["callback_id"] is None
    assert await redis.zcard(KEYS.record_index("callback")) == 0
    await ari.hangup(ours)  # the call ends as any other
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, what="caller gone")


async def test_given_unknown_target_when_rest_transfer_then_404_and_call_untouched(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/transfer",
                                        {"target": "nobody"})
    assert (status, body["error_id"]) == (404, "no-such-transfer-target")
    assert "billing" in body["message"]
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/transfer",
                                        {"target": "billing", "mode": "blind"})
    assert (status, body["error_id"]) == (422, "invalid-request")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await callers.hang_up(ours)


async def test_given_operator_keys_transfer_code_when_code_known_then_transfer_starts(
        app, parties, ari):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    await press(ari, phones.answered["operator1"], "*299#")
    await wait_prompt(observer, f"{call_id}~op1", "transfer-target-unknown", timeout=15)
    await press(ari, phones.answered["operator1"], "*221#")
    await wait_prompt(observer, call_id, "transfer-announce", "PlaybackStarted", timeout=15)
    await press(ari, ours, "2")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await callers.hang_up(ours)


@pytest.mark.policy('[hold]\nfallback_after = 60\n[operators]\nendpoints = ["PJSIP/deskphone"]\n')
async def test_given_desk_phone_when_transfer_button_after_hold_then_announced_transfer_to_the_code(
        app, parties, ari, sandbox, tmp_path):
    """A real SIP desk phone (SIPp at the sandbox's `deskphone` endpoint) transfers the way desk
    phones do: hold (re-INVITE a=sendonly), then REFER to the dialled code. Asterisk hands the
    REFER to the app (PJSIP_TRANSFER_HANDLING()=ari-only on the leg the app dialled): the hold
    hands the caller over, and the transfer etiquette runs as for any other trigger."""
    from test_sip_callers import SCENARIO, _sipp

    callers, phones, observer = parties
    desk = await _sipp("-sf", str(SCENARIO.parent / "phone_transfer.xml"), "-s", "deskphone",
                       "-i", "127.0.0.4", "-p", "5099", "-m", "1", "-timeout", "60", "-aa",
                       cwd=tmp_path)
    try:
        ours, call_id = await callers.dial_local("100")
        operator = await observer.wait_for(
            lambda e: e.get("type") == "ChannelEnteredBridge"
            and e["bridge"]["id"] == f"{call_id}~talk" and e["channel"]["id"] != call_id,
            timeout=30, what="the desk phone answered")
        assert operator["channel"]["name"].startswith("PJSIP/deskphone-")
        await observer.wait_for(lambda e: e.get("type") == "ChannelHold", timeout=10,
                                what="the phone holds first")
        transfer = await observer.wait_for(lambda e: e.get("type") == "ChannelTransfer",
                                           timeout=15, what="ChannelTransfer (REFER)")
        assert transfer["refer_to"]["requested_destination"]["destination"] == "21"
        announce = await wait_prompt(observer, call_id, "transfer-announce", "PlaybackStarted",
                                     timeout=15)
        await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                and e["playback"]["id"] == announce["playback"]["id"]
                                and e["playback"]["media_uri"].endswith("directory-billing"),
                                what="the target's name")
        await press(ari, ours, "1")
        # the operator is told they are free and their phone's leg ends (SIPp gets the BYE)
        await wait_prompt(observer, operator["channel"]["id"], "operator-freed-transfer",
                          timeout=15)
        out, _ = await asyncio.wait_for(desk.communicate(), 30)
        assert desk.returncode == 0, out.decode(errors="replace")[-2000:]
        leg = await target_answers(phones, observer, call_id)
        await wait_prompt(observer, leg, "transfer-intro-to-target", "PlaybackStarted")
        await press(ari, phones.answered["operator2"], "1")
        await talk_bridge_with(ari, call_id, leg, timeout=20)
        events = [e["event"] for e in await timeline(app, call_id)]
        assert events.index("hold started") < events.index("transfer started")
        started = [e for e in await timeline(app, call_id) if e["event"] == "transfer started"][0]
        assert (started["source"], started["target"]) == ("phone", "billing")
        held = [e for e in await timeline(app, call_id) if e["event"] == "hold ended"][0]
        assert held["outcome"] == "transferred"
        await callers.hang_up(ours)
    finally:
        if desk.returncode is None:
            desk.kill()
            await desk.wait()
