"""The queue against the real Asterisk and Redis: callers who find every operator busy wait in
one line, hear their place and the check-ins, are put through in the order they came as the
operator frees up (the operator hears the whisper first), may leave a message or keep their
place as a callback, and are recorded as abandoned when they hang up.

Times are shrunk (a check-in every 3 s, the way out after 12 s); the shipped 25 s / 90 s are
in test_queue_defaults.py."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from ari_app.callback.keys import callback_calls_key
from ari_app.inbound.keys import inbound_key, store_key
from ari_app.storage import Keyspace

from ari_app.ari import operations as ops

from conftest import API_TOKEN
from harness import MUSIC, SILENCE, AppProcess, longest_silence, record_heard_since, until
from test_callback import CUSTOMER, PHONE, callback_policy, callback_put_through
from test_first_call import prompt_of, talk_bridge_with

pytestmark = pytest.mark.integration

KEYS = Keyspace()
OP1 = "PJSIP/operator1"
QUEUE = """
[operators]
wrap_up = 0

[[queues]]
name = "sales"
department = "billing"
operators = ["PJSIP/operator1"]
check_in_interval = 3
threshold = 40
max_wait = 80
menu_repeat_after = 2
choice_timeout = 3
hours = "00:00-23:59"
"""
BOTH = QUEUE.replace('operators = ["PJSIP/operator1"]',
                     'operators = ["PJSIP/operator1", "PJSIP/operator2"]')
SHORT = QUEUE.replace("threshold = 40", "threshold = 14")


async def timeline(app, call_id: str) -> list[dict]:
    return await app[store_key].timeline(call_id)


async def steps(app, call_id: str, rule: str = "queue") -> list[dict]:
    return [e for e in await timeline(app, call_id) if e.get("rule") == rule]


def noted(app, call_id: str, event: str):
    """For `until`: the queue's steps named `event` in the call's timeline, once there are any."""
    async def read() -> list[dict]:
        return [e for e in await steps(app, call_id) if e["event"] == event]
    return read


def started(observer, call_id: str, prompt: str, since: float = 0.0) -> list[dict]:
    """The call's playbacks whose prompt starts with `prompt`, started since `since`."""
    return [e for e in observer.of_type("PlaybackStarted")
            if e["playback"]["id"].startswith(call_id + "~") and prompt_of(e).startswith(prompt)
            and e["_t"] >= since]


async def wait_prompt(observer, call_id: str, prompt: str, kind: str = "PlaybackStarted",
                      timeout: float = 20.0, since: float = 0.0) -> dict:
    return await observer.wait_for(
        lambda e: e.get("type") == kind and e["playback"]["id"].startswith(call_id + "~")
        and prompt_of(e).startswith(prompt) and e["_t"] >= since,
        timeout=timeout, what=f"{prompt} {kind} for {call_id}")


async def busy_operator(parties, ari) -> tuple[str, str]:
    """A first caller talking with operator1, so that the next ones queue: (leg, call id)."""
    callers, phones, _ = parties
    ours, call_id = await callers.dial_local("100", number="+12125550100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    return ours, call_id


async def queued(parties, number: str, position: int) -> tuple[str, str]:
    """A caller dials in and enters the queue; their place is `position`."""
    callers, _, observer = parties
    ours, call_id = await callers.dial_local("100", number=number)
    await wait_prompt(observer, call_id, "queue-entered", timeout=25)
    return ours, call_id


@pytest.mark.policy(QUEUE)
async def test_given_operator_busy_when_three_call_then_told_places_and_put_through_in_order(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    first, first_id = await busy_operator(parties, ari)
    waiting = []
    for n, number in enumerate(("+12125550101", "+12125550102", "+12125550103"), 1):
        waiting.append(await queued(parties, number, n))

    # each was told their place: 1 (next in line), 2, 3
    places = []
    for _, call_id in waiting:
        [entered] = [e for e in await steps(app, call_id) if e["event"] == "queue entered"]
        places.append(entered["position"])
    assert places == [1, 2, 3]
    status, body = await app_runner.api("GET", "/api/queues")
    assert status == 200, body
    [sales] = body["queues"]
    assert [w["id"] for w in sales["waiting"]] == [c for _, c in waiting]
    assert [w["position"] for w in sales["waiting"]] == [1, 2, 3]

    # a check-in comes while they wait
    await wait_prompt(observer, waiting[2][1], "queue-checkin-", timeout=15)

    # the operator frees up: the first in line is put through, then the next, in order
    order = []
    await callers.hang_up(first)
    for ours, call_id in waiting:
        await talk_bridge_with(ari, call_id, f"{call_id}~qop1", timeout=20)
        whisper = await wait_prompt(observer, call_id, "queue-whisper", "PlaybackFinished")
        assert whisper["playback"]["id"].split("~")[1].endswith("-operator")
        order.append(call_id)
        await callers.hang_up(ours)
    assert order == [c for _, c in waiting]
    # the second caller was told they moved up at a check-in (2 -> 1)
    second = [e for e in await steps(app, waiting[1][1]) if e["event"] == "check-in"]
    assert any(e["position"] == 1 for e in second), second


async def listed(app_runner, queue: str = "sales") -> dict:
    status, body = await app_runner.api("GET", "/api/queues")
    assert status == 200, body
    return {q["name"]: q for q in body["queues"]}[queue]


@pytest.mark.policy(BOTH)
async def test_given_operator_rings_out_when_offered_then_paused_missed_and_caller_keeps_place(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    status, _ = await app_runner.api("POST", "/api/operators/operator2/pause")
    assert status == 200
    first, _ = await busy_operator(parties, ari)
    ours, call_id = await queued(parties, "+12125550101", 1)

    # operator2 comes back but lets the phone ring out: they are paused as missed, the caller
    # keeps their place (still first) and hears their music and check-ins meanwhile
    phones.mode["operator2"] = "ignore"
    status, _ = await app_runner.api("POST", "/api/operators/operator2/unpause")
    assert status == 200
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~qop1", timeout=20,
                            what="operator2's phone rang out")
    missed = await until(noted(app, call_id, "operator missed"), 5, "the missed ring noted")
    assert missed[0]["operator"] == "PJSIP/operator2" and missed[0]["missed"]
    await app[inbound_key].lanes.join()  # the rest of that step: paused, back in line
    operators = await app_runner.operators()
    assert (operators["PJSIP/operator2"]["state"], operators["PJSIP/operator2"]["reason"]) == (
        "paused", "missed")
    assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [call_id]

    # the next operator free takes them
    await callers.hang_up(first)
    await talk_bridge_with(ari, call_id, f"{call_id}~qop2", timeout=20)
    await callers.hang_up(ours)


@pytest.mark.policy(SHORT)
async def test_given_way_out_when_caller_presses_2_then_message_for_the_department(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    ours, call_id = await queued(parties, "+12125550101", 1)
    await wait_prompt(observer, call_id, "queue-menu", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2")
    await wait_prompt(observer, call_id, "voicemail-intro", "PlaybackFinished", timeout=20)
    await observer.wait_for(lambda e: e.get("type") == "RecordingStarted"
                            and e["recording"]["name"].startswith(call_id), timeout=10,
                            what="the message is recorded")
    # the caller speaks (a recorded voice played into their own leg), then presses #
    await ari.play(ours, "sound:queue-thankyou", playback_id=f"speak-{ours}")
    await callers.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                           and e["playback"]["id"] == f"speak-{ours}", what="caller spoke")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="#")
    await wait_prompt(observer, call_id, "voicemail-saved", "PlaybackFinished", timeout=20)
    status, body = await app_runner.api("GET", "/api/voicemails")
    assert status == 200, body
    [message] = [v for v in body["voicemails"] if v["call_id"] == call_id]
    assert message["for_whom"] == "billing"
    assert (await listed(app_runner))["waiting"] == []  # out of line
    await callers.hang_up(first)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == ours, timeout=10, what="caller let go")


@pytest.mark.policy(SHORT)
async def test_given_way_out_when_caller_keeps_place_then_called_back_at_their_turn_after_earlier_caller(
        app_runner, settings, parties, ari, redis):
    """The caller who chose a callback keeps their place: the live caller who came before them
    is put through first, then the operator is reserved and the customer dialled; the caller
    who came after waits behind the callback."""
    callers, phones, observer = parties
    callback_policy(settings)
    app = await app_runner.start()
    first, _ = await busy_operator(parties, ari)
    earlier, earlier_id = await queued(parties, "+12125550101", 1)
    ours, call_id = await callers.dial_local("100", number=CUSTOMER)
    await wait_prompt(observer, call_id, "queue-entered", timeout=25)
    await wait_prompt(observer, call_id, "queue-menu", timeout=30)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="3")
    await wait_prompt(observer, call_id, "callback-own-number", timeout=10)
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="1")
    await wait_prompt(observer, call_id, "queue-place-kept", "PlaybackFinished", timeout=25)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == call_id, timeout=10,
                            what="the caller is let go after the goodbye")
    later, later_id = await queued(parties, "+12125550103", 3)
    line = (await listed(app_runner))["waiting"]
    assert [(w["id"], w["kind"]) for w in line] == [
        (earlier_id, "live"), (call_id, "callback"), (later_id, "live")]
    [kept] = [e for e in await steps(app, call_id) if e["event"] == "place kept"]
    request_id = kept["request"]

    # the operator frees up: the earlier live caller first
    await callers.hang_up(first)
    await talk_bridge_with(ari, earlier_id, f"{earlier_id}~qop1", timeout=20)
    record = json.loads(await redis.get(KEYS.record("callback", request_id)))
    assert record["attempts"] == 0, "a callback dialled before an earlier live caller"
    # then the callback: the operator is reserved and answers first, then the customer
    await callers.hang_up(earlier)
    await callback_put_through(observer, ari, phones, prefix="cb-")
    # the caller who came after the callback is still waiting
    assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [later_id]
    await ari.hangup(phones.answered[PHONE])
    for _ in range(50):
        done = json.loads(await redis.get(KEYS.record("callback", request_id)))
        if done["status"] == "done":
            break
        await asyncio.sleep(0.2)  # polling Redis until the deadline
    assert (done["status"], done["outcome"]) == ("done", "connected")
    await talk_bridge_with(ari, later_id, f"{later_id}~qop1", timeout=20)
    await callers.hang_up(later)
    await app[callback_calls_key].lanes.join()


@pytest.mark.policy(QUEUE)
async def test_given_caller_hangs_up_while_waiting_when_calls_again_then_abandon_recorded_and_welcomed_back(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    before, before_id = await queued(parties, "+12125550101", 1)
    ours, call_id = await queued(parties, "+12125550102", 2)
    await callers.hang_up(ours)
    abandoned = await until(noted(app, call_id, "abandoned"), 5, "the hang-up noted")
    assert abandoned[0]["position"] == 2 and abandoned[0]["waited"] >= 0
    await app[inbound_key].lanes.join()  # the rest of that step: out of the line
    assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [before_id]
    after, after_id = await queued(parties, "+12125550103", 2)

    # calling again within the return window: "welcome back", and back at the old place,
    # ahead of the caller who came in the meantime
    again, again_id = await callers.dial_local("100", number="+12125550102")
    await wait_prompt(observer, again_id, "queue-welcome-back", timeout=15)
    assert not [e for e in started(observer, again_id, "greeting") if prompt_of(e) == "greeting"]
    await wait_prompt(observer, again_id, "queue-entered", timeout=25)
    [entered] = [e for e in await steps(app, again_id) if e["event"] == "queue entered"]
    assert (entered["position"], entered["returning"]) == (2, True)
    assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [
        before_id, again_id, after_id]
    for channel in (before, again, after, first):
        await callers.hang_up(channel)


@pytest.mark.policy(QUEUE.replace('hours = "00:00-23:59"', 'hours = "00:00-00:01"'))
async def test_given_queue_closed_when_caller_arrives_then_told_and_offered_message_or_callback(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    ours, call_id = await callers.dial_local("100", number="+12125550101")
    closed = await wait_prompt(observer, call_id, "queue-way-out-menu", timeout=25)
    assert closed["playback"]["media_uri"] == "sound:etiquette/queue-closed"
    await wait_prompt(observer, call_id, "queue-way-out-menu", "PlaybackFinished", timeout=30)
    said = [e["playback"]["media_uri"] for e in started(observer, call_id, "queue-way-out-menu")]
    assert said[:8] == ["sound:etiquette/queue-closed", "sound:etiquette/queue-hours-from",
                        "number:0", "sound:etiquette/queue-hours-to", "number:0", "number:1",
                        "sound:etiquette/queue-hours-oclock", "sound:etiquette/queue-way-out-menu"]
    [overflow] = [e for e in await steps(app, call_id) if e["event"] == "overflow"]
    assert overflow["why"] == "closed"
    assert (await listed(app_runner))["waiting"] == []
    await callers.hang_up(ours)
    await callers.hang_up(first)


@pytest.mark.policy(QUEUE)
async def test_given_nobody_logged_in_when_caller_arrives_then_told_at_once_and_offered_way_out(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    status, _ = await app_runner.api("POST", "/api/operators/operator1/pause")
    assert status == 200
    ours, call_id = await callers.dial_local("100", number="+12125550101")
    menu = await wait_prompt(observer, call_id, "queue-way-out-menu", timeout=25)
    assert menu["playback"]["media_uri"] == "sound:etiquette/queue-no-operator"
    [entered] = [e for e in await steps(app, call_id) if e["event"] == "queue entered"]
    assert (entered["operators"], entered["estimate"]) == (0, "none")
    await callers.hang_up(ours)


@pytest.mark.policy(QUEUE + "max_waiting = 1\n")
async def test_given_queue_full_when_caller_arrives_then_told_and_offered_way_out_at_once(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    waiting, waiting_id = await queued(parties, "+12125550101", 1)
    ours, call_id = await callers.dial_local("100", number="+12125550102")
    full = await wait_prompt(observer, call_id, "queue-way-out-menu", timeout=25)
    assert full["playback"]["media_uri"] == "sound:etiquette/queue-full"
    [overflow] = [e for e in await steps(app, call_id) if e["event"] == "overflow"]
    assert overflow["why"] == "full"
    assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [waiting_id]
    for channel in (ours, waiting, first):
        await callers.hang_up(channel)


@pytest.mark.policy(QUEUE.replace("check_in_interval = 3", "check_in_interval = 7"))
async def test_given_caller_waiting_when_recorded_then_music_and_check_ins_start_to_start_no_dead_air(
        app, app_runner, parties, ari, spool):
    """What the caller hears, from a recording of their leg: music, a check-in every 7 s start
    to start, music again, and never more than 1 s of silence in between."""
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    ours, call_id = await queued(parties, "+12125550101", 1)
    await wait_prompt(observer, call_id, "queue-entered", "PlaybackFinished", timeout=20)
    levels, since = await record_heard_since(observer, ours, 16, spool)
    assert longest_silence(levels) <= 10, f"more than 1 s of dead air: {levels}"
    music = [lv for lv in levels if MUSIC[0] < lv < MUSIC[1]]
    speech = [lv for lv in levels if lv >= MUSIC[1]]
    assert len(music) >= 20 and len(speech) >= 5, levels  # both heard, in turn
    check_ins = sorted(e["_t"] for e in started(observer, call_id, "queue-checkin-", since))
    assert len(check_ins) >= 2, check_ins
    gaps = [b - a for a, b in zip(check_ins, check_ins[1:])]
    assert all(6.5 <= gap <= 7.6 for gap in gaps), gaps  # start to start
    prompts = [prompt_of(e) for e in started(observer, call_id, "queue-checkin-")]
    assert all(a != b for a, b in zip(prompts, prompts[1:])), f"the same sentence twice: {prompts}"
    assert SILENCE < max(levels)
    await callers.hang_up(ours)
    await callers.hang_up(first)


async def dial_into(callers, app_name: str, number: str) -> tuple[str, str]:
    """A caller whose call reaches the Stasis app `app_name` (another instance): the dialplan's
    ETIQUETTE_APP, set on the caller's Local channel, wins over the global."""
    import uuid
    tag = uuid.uuid4().hex[:10]
    ours, call_id = f"tc-{tag}", f"call-{tag}"
    await callers.ari.originate("Local/100@etiquette-inbound/n", app=callers.app,
                                app_args="caller", channel_id=ours, other_channel_id=call_id,
                                caller_id=f'"Caller" <{number}>', timeout=30,
                                variables={"ETIQUETTE_APP": app_name})
    return ours, call_id


@pytest.mark.timeout(240)
@pytest.mark.policy(QUEUE)
async def test_given_two_instances_when_callers_queue_on_both_then_put_through_in_arrival_order(
        app, app_runner, settings, parties, ari, tmp_path):
    """Two app instances share one Redis: callers arriving on either wait in one line, and
    the operator freed on one instance takes the head, even when the other drives that call."""
    callers, phones, observer = parties
    other = AppProcess(settings, tmp_path, "etiquette-b", API_TOKEN)
    await other.start()
    try:
        first, first_id = await busy_operator(parties, ari)  # on this instance
        arrivals = []
        for n, (instance, number) in enumerate((("etiquette-b", "+12125550101"),
                                               (settings.ari_app, "+12125550102"),
                                               ("etiquette-b", "+12125550103")), 1):
            ours, call_id = await dial_into(callers, instance, number)
            await wait_prompt(observer, call_id, "queue-entered", timeout=25)
            arrivals.append((ours, call_id))
        assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [
            c for _, c in arrivals]

        await callers.hang_up(first)  # freed here; the head is the other instance's caller
        for ours, call_id in arrivals:
            await talk_bridge_with(ari, call_id, f"{call_id}~qop1", timeout=20)
            await callers.hang_up(ours)  # freed on whichever instance drove the call
        deadline = time.monotonic() + 10
        while await ari.channels() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # polling Asterisk until the deadline
    finally:
        code = await other.stop()
    assert code == 0 and other.error_lines() == [], other.error_lines()


TWO_QUEUES = """
[operators]
wrap_up = 0

[[queues]]
name = "sales"
operators = ["PJSIP/operator1"]
extensions = ["100"]
check_in_interval = 3
threshold = 40
max_wait = 80
hours = "00:00-23:59"

[[queues]]
name = "billing"
department = "billing"
operators = ["PJSIP/operator2"]
extensions = ["101"]
check_in_interval = 3
threshold = 40
max_wait = 80
hours = "00:00-23:59"
"""


@pytest.mark.policy(TWO_QUEUES)
async def test_given_department_number_when_its_operator_busy_then_waits_in_its_queue_and_whisper_names_it(
        app, app_runner, parties, ari):
    """The number dialled picks the queue; the other queue's free operator does not take the
    caller; when theirs frees up, the operator alone hears the whisper (the department, the
    wait, "calling again" for a caller seen before), then the caller is put through."""
    callers, phones, observer = parties
    first, first_id = await callers.dial_local("101", number="+12125550100")
    await talk_bridge_with(ari, first_id, f"{first_id}~op1", timeout=20)
    assert phones.answered.get("operator2"), "101 reaches the billing queue's operator"
    ours, call_id = await callers.dial_local("101", number="+12125550100")  # calling again
    await wait_prompt(observer, call_id, "queue-entered", timeout=25)
    assert [w["id"] for w in (await listed(app_runner, "billing"))["waiting"]] == [call_id]
    assert (await listed(app_runner, "sales"))["waiting"] == []

    await callers.hang_up(first)
    await talk_bridge_with(ari, call_id, f"{call_id}~qop1", timeout=20)
    whisper = [e for e in observer.of_type("PlaybackStarted")
               if e["playback"]["id"].startswith(f"{call_id}~") and
               prompt_of(e) == "queue-whisper"]
    assert {e["playback"]["target_uri"] for e in whisper} == {f"channel:{call_id}~qop1"}
    heard = [e["playback"]["media_uri"] for e in whisper]
    assert heard[:2] == ["sound:etiquette/queue-whisper", "sound:etiquette/directory-billing"]
    assert "sound:etiquette/queue-whisper-calling-again" in heard
    connecting = started(observer, call_id, "queue-connecting")
    assert {e["playback"]["target_uri"] for e in connecting} == {f"channel:{call_id}"}
    await callers.hang_up(ours)


@pytest.mark.policy(QUEUE + "default_handle_time = 600\nmax_estimated_wait = 15\n")
async def test_given_estimate_over_the_limit_when_caller_arrives_then_told_the_wait_and_offered_way_out(
        app, app_runner, parties, ari):
    """Nobody free, one operator, 10 minutes a call by the policy's default: the second caller
    would wait about 20 minutes, more than the 15 the policy allows: told so, not queued."""
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    waiting, waiting_id = await queued(parties, "+12125550101", 1)
    [entered] = [e for e in await steps(app, waiting_id) if e["event"] == "queue entered"]
    assert (entered["estimate"], entered["estimate_minutes"], entered["estimate_basis"]) == (
        "minutes", 10, "policy-default")
    ours, call_id = await callers.dial_local("100", number="+12125550102")
    await wait_prompt(observer, call_id, "queue-way-out-menu", "PlaybackFinished", timeout=40)
    said = [e["playback"]["media_uri"] for e in started(observer, call_id, "queue-way-out-menu")]
    assert said[:5] == ["sound:etiquette/queue-full", "sound:etiquette/queue-wait-about",
                        "number:20", "sound:etiquette/minutes", "sound:etiquette/queue-way-out-menu"]
    assert [w["id"] for w in (await listed(app_runner))["waiting"]] == [waiting_id]
    for channel in (ours, waiting, first):
        await callers.hang_up(channel)


GREETING_KEYS = TWO_QUEUES + """
[greeting]
queue_keys = {"2" = "billing"}
language_keys = {"9" = "ru"}
"""


def offers_said(observer, call_id: str) -> list[str]:
    """The media of the greeting's offers the caller actually heard begin."""
    return [e["playback"]["media_uri"] for e in started(observer, call_id, "greeting-offers")]


async def offers_stopped(observer, call_id: str, since: float) -> dict:
    return await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished" and e["_t"] >= since
        and e["playback"]["id"].startswith(call_id + "~")
        and prompt_of(e) == "greeting-offers", timeout=5, what="the offers stopped")


@pytest.mark.policy(GREETING_KEYS)
async def test_given_greeting_keys_when_caller_presses_2_then_the_offers_stop_and_the_departments_queue_takes_them(
        app, app_runner, parties, ari):
    """The keys are offered once after the recording notice; 2 picks Billing's queue, so its
    operator (operator2) rings, though sales' operator1 is free too. The key ends the offers
    at once: the caller does not hear the rest of a menu they answered."""
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100", number="+12125550101")
    offers = await wait_prompt(observer, call_id, "greeting-offers", timeout=20)
    assert offers["playback"]["media_uri"] == "sound:etiquette/greeting-key-queue"
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2")
    stopped = await offers_stopped(observer, call_id, offers["_t"])
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=25)
    assert list(phones.answered) == ["operator2"], phones.answered
    [key] = [e for e in await timeline(app, call_id) if e["event"] == "greeting key"]
    assert key["queue"] == "billing"
    said = offers_said(observer, call_id)
    assert "sound:etiquette/press-0-for-operator" not in said, said
    assert "sound:ru/etiquette/language-offer" not in said, said
    assert stopped["_t"] - key["t"] < 1.5, stopped["_t"] - key["t"]
    await callers.hang_up(ours)


@pytest.mark.policy(GREETING_KEYS)
async def test_given_greeting_keys_when_caller_presses_0_then_an_operator_without_the_rest_of_the_menu(
        app, app_runner, parties, ari):
    """0 is a person, as on every phone menu: said after the departments, it ends the offers
    and the caller goes on as without a key (the number's queue, sales: operator1)."""
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100", number="+12125550101")
    zero = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted"
        and e["playback"]["id"].startswith(call_id + "~")
        and e["playback"]["media_uri"] == "sound:etiquette/press-0-for-operator",
        timeout=30, what="press 0 offered")
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="0")
    await offers_stopped(observer, call_id, zero["_t"])
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=25)
    assert list(phones.answered) == ["operator1"], phones.answered
    [key] = [e for e in await timeline(app, call_id) if e["event"] == "greeting key"]
    assert (key["key"], key["operator"]) == ("0", "any")
    assert "sound:ru/etiquette/language-offer" not in offers_said(observer, call_id)
    await callers.hang_up(ours)


@pytest.mark.policy(GREETING_KEYS)
async def test_given_greeting_keys_when_caller_presses_9_then_the_call_goes_on_in_russian(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    for operator in ("operator1", "operator2"):
        status, _ = await app_runner.api("POST", f"/api/operators/{operator}/pause")
        assert status == 200
    ours, call_id = await callers.dial_local("100", number="+12125550101")
    # the last offer, after the departments and 0: Russian, said in Russian
    russian = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackStarted"
        and e["playback"]["id"].startswith(call_id + "~")
        and e["playback"]["media_uri"] == "sound:ru/etiquette/language-offer", timeout=30,
        what="Russian offered")
    assert offers_said(observer, call_id)[-2:] == [
        "sound:etiquette/press-0-for-operator", "sound:ru/etiquette/language-offer"]
    await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="9")
    await offers_stopped(observer, call_id, russian["_t"])
    menu = await wait_prompt(observer, call_id, "queue-way-out-menu", timeout=25)
    assert menu["playback"]["language"] == "ru"
    await callers.hang_up(ours)
