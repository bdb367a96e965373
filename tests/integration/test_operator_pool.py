"""Operators as a pool, against the real Asterisk and Redis: desk codes dialled from a simulated
desk phone over SIP, the REST routes, who gets the next call (the longest idle, past their
wrap-up, never a paused or logged-out operator), a phone that rings out paused as missed, and
states that outlive a restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.keys import etiquette_log_key
from ari_app.calls.etiquette_log import operator_day

from harness import until
from test_first_call import prompt_of, talk_bridge_with

pytestmark = pytest.mark.integration

OP1, OP2 = "PJSIP/operator1", "PJSIP/operator2"


def heard(observer, prompt: str, since: float) -> bool:
    """The prompt played to its end (to the desk phone, or a caller) after `since`."""
    return any(prompt_of(e) == prompt and e["playback"]["state"] == "done" and e["_t"] > since
               for e in observer.of_type("PlaybackFinished"))


async def desk_code(parties, phone: str, code: str, prompt: str) -> None:
    """`phone` dials `code`; the app told them `prompt` (to its end), then hung up."""
    callers, _, observer = parties
    started = time.time()
    await callers.dial_desk_code(phone, code)
    await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                            and prompt_of(e) == prompt and e["_t"] > started,
                            what=f"{prompt} told to {phone}")
    assert heard(observer, prompt, started)


async def call_and_answer(parties, ari, timeout: float = 20.0) -> tuple[str, str, str]:
    """A caller dials in and is put through: (our leg, call id, the phone that answered)."""
    callers, phones, _ = parties
    since = time.time()
    ours, call_id = await callers.dial_local("100")
    await phones.wait_for(lambda e: e.get("type") == "StasisStart" and e["_t"] > since,
                          timeout=timeout, what="an operator's phone rings")
    deadline = time.monotonic() + timeout
    while True:  # the leg that answered is the last one dialled: wait for its bridge
        legs = [c["id"] for c in await ari.channels() if c["id"].startswith(f"{call_id}~op")]
        talk = [b for b in await ari.bridges() if b["id"] == f"{call_id}~talk"]
        if talk and len(talk[0]["channels"]) == 2:
            break
        assert time.monotonic() < deadline, f"caller never put through; legs {legs}"
        await asyncio.sleep(0.1)  # polling Asterisk until the deadline
    answered = [e["args"][1] for e in phones.of_type("StasisStart") if e["_t"] > since]
    return ours, call_id, answered[-1]


async def hang_up_and_settle(parties, app_runner, ours: str, endpoint: str) -> None:
    """The caller hangs up; wait until the app has let the operator go."""
    callers, _, _ = parties
    await callers.hang_up(ours)

    async def freed() -> bool:
        listed = (await app_runner.operators())[endpoint]  # one listing read per poll
        return listed["last_call_ended_at"] is not None and not listed["in_call"]
    await until(freed, 10, f"{endpoint} freed")


@pytest.mark.policy("[operators]\nlogin_required = true\nwrap_up = 0\n")
async def test_given_login_required_when_operator_logs_out_by_desk_code_then_no_call_until_login(
        app_runner, parties, ari, redis):
    callers, phones, observer = parties
    await app_runner.start()
    assert {o["state"] for o in (await app_runner.operators()).values()} == {"logged_out"}

    await desk_code(parties, "operator1", "*41", "operator-logged-in")
    listed = await app_runner.operators()
    assert (listed[OP1]["state"], listed[OP1]["registered"]) == ("logged_in", True)
    assert listed[OP2]["state"] == "logged_out"
    ours, call_id, phone = await call_and_answer(parties, ari)
    assert phone == "operator1"  # the only one logged in
    await hang_up_and_settle(parties, app_runner, ours, OP1)

    await desk_code(parties, "operator1", "*42", "operator-logged-out")
    assert (await app_runner.operators())[OP1]["state"] == "logged_out"
    since = time.time()
    ours, call_id = await callers.dial_local("100")
    # nobody logged in: the caller is told why they wait, and waits on music; no phone rings
    await observer.wait_for(lambda e: e.get("type") == "ChannelEnteredBridge"
                            and e["bridge"]["id"] == f"{call_id}~hold", timeout=20,
                            what="caller waiting in the holding bridge")
    assert heard(observer, "all-operators-busy", since)
    assert not [e for e in phones.of_type("StasisStart") if e["_t"] > since]

    await desk_code(parties, "operator1", "*41", "operator-logged-in")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=15)
    assert [e["args"][1] for e in phones.of_type("StasisStart") if e["_t"] > since] == [
        "operator1"]
    await callers.hang_up(ours)


async def test_given_pause_with_reason_by_rest_when_listed_then_shown_and_calls_skip_them(
        app, app_runner, parties, ari):
    status, body = await app_runner.api("POST", "/api/operators/PJSIP/operator1/pause",
                                        {"reason": "break"})
    assert status == 200, body
    assert (body["endpoint"], body["state"], body["reason"]) == (OP1, "paused", "break")
    listed = await app_runner.operators()
    assert (listed[OP1]["state"], listed[OP1]["reason"], listed[OP1]["free"]) == (
        "paused", "break", False)
    assert listed[OP1]["since"] == pytest.approx(time.time(), abs=5)
    assert (listed[OP2]["state"], listed[OP2]["registered"], listed[OP2]["in_call"],
            listed[OP2]["free"]) == ("logged_in", True, False, True)

    ours, call_id, phone = await call_and_answer(parties, ari)
    assert phone == "operator2"  # operator1 is first in the policy, but paused
    assert (await app_runner.operators())[OP2]["in_call"] is True
    await hang_up_and_settle(parties, app_runner, ours, OP2)

    # a pause reason by desk code: the digit is the policy's second reason
    await desk_code(parties, "operator1", "*432", "operator-paused")
    assert (await app_runner.operators())[OP1]["reason"] == "after-call-work"
    status, body = await app_runner.api("POST", "/api/operators/operator1/unpause")
    assert (status, body["state"], body["reason"]) == (200, "logged_in", None)


async def test_given_bad_operator_requests_when_posted_then_clear_4xx_and_nothing_changed(
        app, app_runner, parties):
    import aiohttp

    assert await app_runner.api("POST", "/api/operators/operator1/pause",
                                {"reason": "nap"}) == (422, {
        "error_id": "invalid-request", "field": "reason",
        "message": "unknown pause reason 'nap'; the policy knows "
                   "['break', 'after-call-work', 'meeting']"})
    status, body = await app_runner.api("POST", "/api/operators/operator1/pause",
                                        {"reason": "missed"})  # the app's own reason
    assert (status, body["field"]) == (422, "reason")
    status, body = await app_runner.api("POST", "/api/operators/PJSIP/nobody/login")
    assert (status, body["error_id"]) == (404, "no-such-operator")
    assert "PJSIP/operator1" in body["message"]
    status, body = await app_runner.api("POST", "/api/operators/operator1/logout")
    assert (status, body["state"]) == (200, "logged_out")
    status, body = await app_runner.api("POST", "/api/operators/operator1/unpause")
    assert (status, body["error_id"]) == (409, "wrong-operator-state")
    async with aiohttp.ClientSession() as session:
        async with session.post(app_runner.base_url + "/api/operators/operator1/pause",
                                data=b'{"reason": ', headers={
                                    "Authorization": "Bearer "
                                    + app_runner.settings.api_token.get_secret_value(),
                                    "Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error_id"] == "invalid-json"
    listed = await app_runner.operators()
    assert (listed[OP1]["state"], listed[OP1]["reason"]) == ("logged_out", None)
    # a desk code the policy does not have, and a reason digit it does not list
    await desk_code(parties, "operator2", "*439", "operator-code-unknown")
    assert (await app_runner.operators())[OP2]["state"] == "logged_in"


@pytest.mark.policy("[operators]\nwrap_up = 0\n")
async def test_given_operators_idle_for_different_times_when_calls_come_then_longest_idle_first(
        app, app_runner, parties, ari):
    answered = []
    for _ in range(3):
        ours, call_id, phone = await call_and_answer(parties, ari)
        answered.append(phone)
        await hang_up_and_settle(parties, app_runner, ours, f"PJSIP/{phone}")
    # both never called: the policy's order; then whoever has waited longer since their call
    assert answered == ["operator1", "operator2", "operator1"]


@pytest.mark.policy("[operators]\nendpoints = [\"PJSIP/operator1\"]\nwrap_up = 6\n"
                    "[recording]\nenabled = false\n")
async def test_given_wrap_up_when_next_caller_comes_at_once_then_offered_only_after_it(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    ours, call_id, phone = await call_and_answer(parties, ari)
    await hang_up_and_settle(parties, app_runner, ours, OP1)
    listed = (await app_runner.operators())[OP1]
    ended, until = listed["last_call_ended_at"], listed["wrap_up_until"]
    assert until == pytest.approx(ended + 6)
    assert listed["free"] is False  # registered, not in a call, logged in: but wrapping up

    since = time.time()
    ours, call_id = await callers.dial_local("100")
    ring = await phones.wait_for(lambda e: e.get("type") == "StasisStart" and e["_t"] > since,
                                 timeout=20, what="operator1 rings for the next caller")
    assert ring["_t"] >= until - 0.2, "offered during the wrap-up"
    assert [e for e in observer.of_type("PlaybackStarted")  # told why they wait meanwhile
            if prompt_of(e) == "all-operators-busy" and since < e["_t"] < ring["_t"]]
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=15)
    await callers.hang_up(ours)


async def test_given_phone_rings_out_when_caller_waits_then_operator_paused_missed_and_next_one(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    phones.mode["operator1"] = "ignore"  # rings, nobody picks up (ring_timeout 4 s)
    ours, call_id, phone = await call_and_answer(parties, ari)
    assert phone == "operator2"
    listed = await app_runner.operators()
    assert (listed[OP1]["state"], listed[OP1]["reason"], listed[OP1]["free"]) == (
        "paused", "missed", False)
    # their day's etiquette log says which call they missed
    day = await app[etiquette_log_key].read_operator(OP1, operator_day(time.time()))
    missed = [e for e in day if e["step"] == "operator:paused"]
    assert [(e["reason"], e["source"], e["call"]) for e in missed] == [("missed", "app", call_id)]
    await callers.hang_up(ours)

    # they stay paused until they unpause: the next caller is not offered to them
    phones.mode["operator1"] = "answer"
    await hang_up_and_settle(parties, app_runner, ours, OP2)
    await desk_code(parties, "operator1", "*44", "operator-unpaused")
    assert (await app_runner.operators())[OP1]["state"] == "logged_in"


async def test_given_operator_paused_when_app_restarts_then_still_paused_and_skipped(
        app_runner, parties, ari):
    await app_runner.start()
    status, _ = await app_runner.api("POST", "/api/operators/operator1/pause",
                                     {"reason": "meeting"})
    assert status == 200
    before = (await app_runner.operators())[OP1]

    await app_runner.stop()
    await app_runner.start()
    after = (await app_runner.operators())[OP1]
    assert (after["state"], after["reason"], after["since"]) == (
        "paused", "meeting", before["since"])
    ours, call_id, phone = await call_and_answer(parties, ari)
    assert phone == "operator2"
    await parties[0].hang_up(ours)
