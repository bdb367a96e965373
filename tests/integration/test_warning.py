"""The abusive-caller warning against the real Asterisk and Redis: the operator warns (REST or
the feature code); the first time a polite warning the caller and the operator both hear, then
they talk again; the second time a polite goodbye, then the caller's leg is hung up and the
operator goes to wrap-up as when a caller hangs up. Both land in the call's timeline, the
operator's day and on the customer card. A call not in talk: 409; no such call: 404."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.ari import operations as ops
from ari_app.calls.etiquette_log import operator_day
from ari_app.inbound.keys import store_key
from ari_app.keys import etiquette_log_key
from ari_app.storage import Keyspace

from harness import MUSIC, record_heard_since
from test_first_call import prompt_of, talk_bridge_with

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEYS = Keyspace()
OP1 = "PJSIP/operator1"
NUMBER = "+12125550166"


async def talking(parties, ari) -> tuple[str, str, str, str]:
    """A caller talks with operator1: (our leg, call id, operator leg, operator's phone)."""
    callers, phones, _ = parties
    ours, call_id = await callers.dial_local("100", number=NUMBER)
    operator_leg = f"{call_id}~op1"
    await talk_bridge_with(ari, call_id, operator_leg, timeout=20)
    return ours, call_id, operator_leg, phones.answered["operator1"]


async def prompt_event(observer, call_id: str, prompt: str, kind: str = "PlaybackStarted",
                       timeout: float = 10.0) -> dict:
    return await observer.wait_for(
        lambda e: e.get("type") == kind and e["playback"]["id"].startswith(call_id + "~")
        and prompt_of(e) == prompt, timeout=timeout, what=f"{prompt} {kind}")


async def gone(observer, channel: str, timeout: float = 10.0) -> dict:
    return await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                   and e["channel"]["id"] == channel, timeout=timeout,
                                   what=f"{channel} hung up")


async def recording(observer, channel: str, spool, stop: asyncio.Event, spy: str = "in"
                    ) -> asyncio.Task:
    """What `channel` hears from now on, once its own recording has started, until `stop` is
    set (at most 20 s). Not a fixed few seconds: the operator's recording once took 5.3 s to
    start after the caller's had, and the caller's 5 s had ended before the prompt began."""
    started = asyncio.Event()
    task = asyncio.create_task(record_heard_since(observer, channel, 20, spool, spy=spy,
                                                  recording=started, stop=stop))
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiting}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # the recording failed before it started: say why
    assert started.is_set(), f"{channel}'s recording did not start within 15 s"
    return task


def spoken(levels: list[int]) -> int:
    """100 ms windows louder than music: a prompt was heard."""
    return sum(lv >= MUSIC[1] for lv in levels)


def when_played(observer, leg: str, prompt: str, levels: list[int], since: float) -> str:
    """What a failed hearing check says: the levels, and when the prompt's playback started
    and finished on `leg`, counted from the recording's start (a CI run once recorded only
    silence while both playbacks were reported: was the prompt outside the recording?)."""
    times = {e["type"]: round(e["_t"] - since, 2) for e in observer.events
             if e.get("type") in ("PlaybackStarted", "PlaybackFinished")
             and prompt_of(e) == prompt and e["playback"]["target_uri"] == f"channel:{leg}"}
    return f"{prompt} on {leg}, seconds after the recording started: {times}; levels {levels}"


async def warning_steps(app, call_id: str) -> list[dict]:
    return [e for e in await app[store_key].timeline(call_id)
            if str(e.get("step", "")).startswith("warning:")]


async def status_of(app_runner, call_id: str) -> str | None:
    status, body = await app_runner.api("GET", "/api/calls")
    assert status == 200, body
    return next((c["status"] for c in body["calls"] if c["call_id"] == call_id), None)


async def heard_out(observer, *legs_and_prompt: str) -> None:
    """The prompt (last argument) played to the end on each leg: both hear it on their own."""
    *legs, prompt = legs_and_prompt
    for leg in legs:
        await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                and prompt_of(e) == prompt
                                and e["playback"]["target_uri"] == f"channel:{leg}",
                                what=f"{prompt} played to {leg}")


async def until_connected(app_runner, call_id: str, timeout: float = 5.0) -> None:
    """The call is back in talk once both legs heard the warning out."""
    deadline = time.monotonic() + timeout
    while (status := await status_of(app_runner, call_id)) != "connected":
        assert time.monotonic() < deadline, f"the call stayed {status}"
        await asyncio.sleep(0.1)  # polling the API until the deadline, not a fixed wait


async def operator_freed(app_runner, timeout: float = 5.0) -> dict:
    """operator1's listing once no call holds them (their wrap-up has started)."""
    deadline = time.monotonic() + timeout
    while True:
        entry = (await app_runner.operators())[OP1]
        if entry["in_call"] is False or time.monotonic() > deadline:
            return entry
        await asyncio.sleep(0.1)  # polling the API until the deadline, not a fixed wait


async def test_given_talk_when_warned_twice_over_rest_then_warned_then_the_call_ended_politely(
        app, app_runner, parties, ari, redis, spool):
    callers, phones, observer = parties
    ours, call_id, operator_leg, phone = await talking(parties, ari)

    # first: a polite warning, heard by the caller and by the operator
    played = asyncio.Event()  # the warning played out on both legs: the recordings stop
    caller_heard = await recording(observer, call_id, spool, played, spy="out")
    operator_heard = await recording(observer, phone, spool, played)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/warn")
    assert (status, body["status"]) == (202, "warning"), body
    await heard_out(observer, call_id, operator_leg, "warning-abuse")
    played.set()
    caller_levels, caller_since = await caller_heard
    operator_levels, operator_since = await operator_heard
    assert spoken(caller_levels) >= 10, when_played(observer, call_id, "warning-abuse",
                                                    caller_levels, caller_since)
    assert spoken(operator_levels) >= 10, when_played(observer, operator_leg, "warning-abuse",
                                                      operator_levels, operator_since)
    await until_connected(app_runner, call_id)  # they talk again
    [warned] = await warning_steps(app, call_id)
    assert (warned["step"], warned["count"], warned["operator"]) == ("warning:warned", 1, OP1)

    # second: a polite goodbye on the caller's leg, then the caller is let go
    said = asyncio.Event()
    caller_heard = await recording(observer, call_id, spool, said, spy="out")
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/warn")
    assert status == 202, body
    finished = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished" and prompt_of(e) == "warning-goodbye"
        and e["playback"]["target_uri"] == f"channel:{call_id}", what="the goodbye played")
    said.set()
    caller_gone = await gone(observer, call_id)
    assert caller_gone["_t"] >= finished["_t"]  # the goodbye was said to the end first
    await gone(observer, operator_leg)
    caller_levels, _ = await caller_heard
    assert spoken(caller_levels) >= 10, caller_levels
    entry = await operator_freed(app_runner)
    assert entry["in_call"] is False and entry["wrap_up_until"] is not None, entry
    assert not await redis.exists(KEYS.operator(OP1))

    steps = await warning_steps(app, call_id)
    assert [(e["step"], e["count"]) for e in steps] == [("warning:warned", 1),
                                                        ("warning:call_ended", 2)]
    day = await app[etiquette_log_key].read_operator(OP1, operator_day(steps[0]["t"]))
    assert [e["step"] for e in day if e.get("call_id") == call_id
            and e.get("step", "").startswith("warning:")] == ["warning:warned",
                                                              "warning:call_ended"]
    status, card = await app_runner.api("GET", f"/api/customers/{NUMBER}")
    assert status == 200, card
    assert [(e["event"], e["count"]) for e in card["history"] if "abuse" in e["event"]] == [
        ("warned for abuse", 1), ("call ended for abuse", 2)]
    await gone(observer, ours)


async def test_given_talk_when_the_operator_keys_the_warn_code_twice_then_warned_then_ended(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    ours, call_id, operator_leg, phone = await talking(parties, ari)

    await ari.call(ops.SEND_DTMF, channelId=phone, dtmf="*5")
    await heard_out(observer, call_id, operator_leg, "warning-abuse")
    await until_connected(app_runner, call_id)
    await ari.call(ops.SEND_DTMF, channelId=phone, dtmf="*5")
    await prompt_event(observer, call_id, "warning-goodbye", "PlaybackFinished")
    await gone(observer, call_id)
    await gone(observer, operator_leg)

    steps = await warning_steps(app, call_id)
    assert [(e["step"], e["count"], e["source"]) for e in steps] == [
        ("warning:warned", 1, "feature-code"), ("warning:call_ended", 2, "feature-code")]
    await gone(observer, ours)


async def test_given_a_call_in_its_greeting_when_warned_then_409_and_no_such_call_404(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    ours, call_id = await callers.dial_local("100", number=NUMBER)
    await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                            and e["playback"]["id"].startswith(call_id + "~")
                            and prompt_of(e) == "greeting", what="the greeting")

    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/warn")
    assert (status, body["error_id"]) == (409, "wrong-call-state"), body
    assert "greeting" in body["message"], body
    status, body = await app_runner.api("POST", "/api/calls/no-such-call/warn")
    assert (status, body["error_id"]) == (404, "no-such-call"), body

    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    assert await warning_steps(app, call_id) == []
    await callers.hang_up(ours)
    await gone(observer, call_id)


async def test_given_on_hold_when_warned_then_taken_off_hold_then_warned_on_both_legs(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    ours, call_id, operator_leg, phone = await talking(parties, ari)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold", json={})
    assert (status, body["status"]) == (202, "held"), body

    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/warn")
    assert (status, body["status"]) == (202, "held"), body  # thank you for waiting first
    thanks = await prompt_event(observer, call_id, "hold-resume-thanks", "PlaybackFinished")
    await heard_out(observer, call_id, operator_leg, "warning-abuse")
    warned = [e for e in observer.of_type("PlaybackStarted") if prompt_of(e) == "warning-abuse"]
    assert all(e["_t"] >= thanks["_t"] for e in warned)
    await until_connected(app_runner, call_id)
    [step] = await warning_steps(app, call_id)
    assert (step["step"], step["count"], step["source"]) == ("warning:warned", 1, "rest")
    await callers.hang_up(ours)
    await gone(observer, call_id)


async def test_given_operator_sessions_when_warning_then_only_the_calls_own_operator_may(
        app, app_runner, parties, ari):
    from test_staff_signin import Browser

    callers, phones, observer = parties
    ours, call_id, operator_leg, phone = await talking(parties, ari)
    mine, other = Browser(app_runner.base_url), Browser(app_runner.base_url)
    try:
        assert (await other.sign_in("operator2"))[0] == 200
        status, body, _ = await other.call("POST", f"/api/calls/{call_id}/warn")
        assert (status, body["error_id"]) == (403, "not-your-call"), body
        assert (await mine.sign_in("operator1"))[0] == 200
        status, body, _ = await mine.call("POST", f"/api/calls/{call_id}/warn")
        assert (status, body["status"]) == (202, "warning"), body
    finally:
        await mine.close()
        await other.close()
    await heard_out(observer, call_id, operator_leg, "warning-abuse")
    [step] = await warning_steps(app, call_id)
    assert (step["step"], step["operator"]) == ("warning:warned", OP1)
    await until_connected(app_runner, call_id)
    await callers.hang_up(ours)
    await gone(observer, call_id)
