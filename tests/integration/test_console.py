"""The operator console against the real Asterisk and Redis, with the policy's times shrunk
(check-in every 2 s; the way out after 60 s here, so it does not interrupt): what GET
/api/console says of an operator's call while it rings, talks, holds and is transferred."""

from __future__ import annotations

import time

import pytest

from test_hold import LONG_FALLBACK, connected_call, wait_prompt
from test_transfer import continue_transfer, press, target_answers
from test_first_call import talk_bridge_with

pytestmark = pytest.mark.integration


async def console(app_runner, operator: str = "operator1") -> dict:
    status, body = await app_runner.api("GET", f"/api/console?operator={operator}")
    assert status == 200, body
    return body


@pytest.mark.policy(LONG_FALLBACK)
@pytest.mark.timeout(90)
async def test_given_call_answered_when_console_read_then_call_card_hold_timers_and_transfer(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)

    # at once: the call, who calls, how long they waited, and their card
    view = await console(app_runner)
    [call] = view["calls"]
    assert call["call_id"] == call_id and call["shown_status"] == "talking"
    assert call["caller"] == "+12125550123" and call["name"] == "Test Caller"
    assert 0 < call["waited"] < 15 and call["answered_at"] is not None
    assert call["card"]["name"] == "Test Caller" and call["card"]["calls"] == []
    assert view["operator"]["activity"] == "in a call"
    assert call["etiquette"]["on_hold"] is False
    assert call["etiquette"]["next_hold_warning"] is None
    assert [e["id"] for e in view["directory"]] == ["billing"]
    # operator2 has no call
    assert (await console(app_runner, "operator2"))["calls"] == []

    # hold with a reason: the hold's start, the next check-in and the way out, as times
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/hold",
                                     {"reason": "lookup", "expected_minutes": 2})
    assert status == 202
    await wait_prompt(observer, call_id, "hold-intro", timeout=20)
    first = await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted", timeout=10)
    view = await console(app_runner)
    hold = view["calls"][0]["etiquette"]["hold"]
    assert view["calls"][0]["etiquette"]["on_hold"] is True
    assert hold["reason"] == "lookup" and hold["check_ins"] == 1
    assert abs(hold["way_out_at"] - (hold["started_at"] + 60)) < 0.01
    await wait_prompt(observer, call_id, "checkin-1", after=first["_t"])
    view = await console(app_runner)
    hold = view["calls"][0]["etiquette"]["hold"]
    # the next check-in: 2 s after the last one started (start to start), still ahead
    assert hold["status"] == "holding"
    assert hold["next_check_in_at"] is not None and hold["next_check_in_at"] > time.time() - 0.5

    status, _ = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    assert status == 202
    await wait_prompt(observer, call_id, "hold-resume-thanks")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    view = await console(app_runner)
    et = view["calls"][0]["etiquette"]
    assert et["on_hold"] is False and et["holds"] == 1
    assert et["next_hold_warning"] == ("this would be the second hold in this call "
                                       "(the policy allows 1)")

    # transfer to the directory: operator1 sees it moving, then operator2 has the caller
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/transfer",
                                     {"target": "billing", "mode": "announced"})
    assert status == 202
    view = await console(app_runner)
    assert view["calls"][0]["transfer"]["target"] == "billing"
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    await wait_prompt(observer, leg, "transfer-intro-to-target")
    await press(ari, phones.answered["operator2"], "1")
    await talk_bridge_with(ari, call_id, leg)
    assert (await console(app_runner))["calls"] == []
    [theirs] = (await console(app_runner, "operator2"))["calls"]
    assert theirs["call_id"] == call_id and theirs["shown_status"] == "talking"

    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == leg, what="target's leg gone")


async def test_given_admin_when_console_names_nobody_or_a_stranger_then_clear_errors(
        app, app_runner):
    status, body = await app_runner.api("GET", "/api/console")
    assert (status, body["error_id"]) == (422, "invalid-request")
    status, body = await app_runner.api("GET", "/api/console?operator=nobody")
    assert (status, body["error_id"]) == (404, "no-such-operator")
