"""The operator console against the real Asterisk and Redis, with the policy's times shrunk
(check-in every 5 s; the way out after 60 s, so it does not interrupt): what GET
/api/console says of an operator's call while it talks, holds and is transferred, and the page
in Debian's Chromium (Playwright) as operator1 sees it: signed in with the form, the call with
the card within 1 s of the answer, the hold's timers counting, resume, a transfer to the
directory, and the abusive-caller warning pressed twice (the goodbye heard on the caller's
line). A failing test leaves a screenshot of each page (conftest `page_shots`)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.customers.keys import customers_key
from ari_app.inbound.keys import inbound_key
from ari_app.keys import policy_key
from ari_app.voicemail.keys import voicemails_key
from ari_app.voicemail.service import Voicemail

from test_hold import connected_call, wait_prompt
from test_transfer import continue_transfer, press, target_answers
from test_first_call import talk_bridge_with

pytestmark = pytest.mark.integration
# check-ins every 5 s (a countdown to watch), the way out after 60 s (out of the way)
TIMES = '[hold]\ncheck_in_interval = 5\nfallback_after = 60\n'


async def console(app_runner, operator: str = "operator1") -> dict:
    status, body = await app_runner.api("GET", f"/api/console?operator={operator}")
    assert status == 200, body
    return body


async def hold_view(app_runner, status: str, timeout: float = 3.0) -> dict:
    """operator1's view of their call's hold once the app has it in `status` (the event a
    test waits for reaches the test and the app at about the same time)."""
    deadline = time.monotonic() + timeout
    while True:
        hold = (await console(app_runner))["calls"][0]["etiquette"]["hold"]
        if (hold or {}).get("status") == status or time.monotonic() > deadline:
            return hold
        await asyncio.sleep(0.05)  # polling the API until the deadline, not a fixed wait


@pytest.mark.policy(TIMES)
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
    intro = await wait_prompt(observer, call_id, "hold-intro", timeout=20)
    hold = await hold_view(app_runner, "holding")
    assert hold["reason"] == "lookup" and hold["status"] == "holding"
    assert hold["check_ins"] == 0
    assert abs(hold["way_out_at"] - (hold["started_at"] + 60)) < 0.01
    # the first check-in: 5 s after the music started
    assert intro["_t"] - 0.5 < hold["next_check_in_at"] - 5 < intro["_t"] + 0.5
    await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted", timeout=10)
    hold = await hold_view(app_runner, "checking_in")
    assert hold["status"] == "checking_in" and hold["check_ins"] == 1

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
    await app[inbound_key].lanes.join()  # the step that bridged them then hands the call over
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


# --- the page, in Debian's Chromium ---------------------------------------------------------


async def signed_in(page_shots, browser, base_url: str, user: str):
    """`user` opens /console and signs in with the form; the page once its stream is live."""
    page = await page_shots.new_page(browser)
    await page.goto(base_url + "/console")
    await page.fill("#signin-user", user)
    await page.fill("#signin-password", "pw-" + user)
    await page.click("#signin-button")
    await page.locator("#no-call").wait_for(state="visible", timeout=5000)
    await page.wait_for_function("document.body.dataset.live === 'live'", timeout=5000)
    return page


async def activity_is(page, text: str, timeout: float = 5000) -> None:
    """The page says the operator's state is `text` (it renders a moment after the event)."""
    await page.wait_for_function(
        f"document.getElementById('activity').textContent === {text!r}", timeout=timeout)


async def countdown(page) -> int:
    """The seconds the page shows until the next check-in ("Next check-in in N s"), once
    there are at least 2 left (so the next second is still a countdown)."""
    handle = await page.wait_for_function(r"""(() => {
        const m = document.getElementById('next-check-in').textContent
            .match(/Next check-in in (\d+) s/);
        return m && Number(m[1]) >= 2 ? Number(m[1]) : null; })()""", timeout=15_000)
    return await handle.json_value()


@pytest.mark.policy(TIMES)
@pytest.mark.timeout(120)
async def test_given_operator_signed_in_when_call_answered_then_page_shows_it_and_holds_resumes_transfers(
        app, app_runner, parties, ari, browser, page_shots):
    callers, phones, observer = parties
    await app[customers_key].note("+12125550123", "callback requested", name="Test Caller",
                                  source="web", topic="my invoice")
    page = await signed_in(page_shots, browser, app_runner.base_url, "operator1")
    await activity_is(page, "ready")  # the operator's state comes on the stream once it is live

    ours, call_id = await callers.dial_local("100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    answered = time.monotonic()
    # within 1 s of the answer, without a reload: the call, the caller and their card
    await page.locator("#call-details").wait_for(state="visible", timeout=1000)
    assert time.monotonic() - answered < 1.0
    assert await page.inner_text("#call-number") == "+12125550123"
    assert await page.inner_text("#call-name") == "Test Caller"
    assert "my invoice" in await page.inner_text("#card .card-callbacks")
    await activity_is(page, "in a call")

    # hold with a reason: the hold timer and the check-in countdown move, second by second
    await page.select_option("#hold-reason", "lookup")
    await page.fill("#hold-minutes", "1")
    await page.click("#hold")
    await page.locator("#hold-timer").wait_for(state="visible", timeout=5000)
    first = await countdown(page)
    await page.wait_for_function(
        f"document.getElementById('next-check-in').textContent.includes('in {first - 1} s')",
        timeout=3000)
    assert "On hold for 0:0" in await page.inner_text("#hold-timer")
    assert "Way out in" in await page.inner_text("#way-out")
    assert "(lookup)" in await page.inner_text("#hold-state")

    await page.click("#resume")
    await wait_prompt(observer, call_id, "hold-resume-thanks")
    await page.wait_for_function(
        "document.getElementById('hold-state').textContent.startsWith('Not on hold')",
        timeout=3000)
    # the next hold would be past the policy's one: said before it happens
    assert "second hold" in await page.inner_text("#hold-warning")

    # transfer to the directory's billing (operator2's phone): the caller ends up there
    await page.select_option("#transfer-target", "billing")
    await page.select_option("#transfer-mode", "announced")
    await page.click("#transfer")
    await page.locator("#transfer-state").wait_for(state="visible", timeout=3000)
    assert "billing" in await page.inner_text("#transfer-state")
    await continue_transfer(ari, observer, ours, call_id)
    leg = await target_answers(phones, observer, call_id)
    await wait_prompt(observer, leg, "transfer-intro-to-target")
    await press(ari, phones.answered["operator2"], "1")
    await talk_bridge_with(ari, call_id, leg)
    await page.locator("#no-call").wait_for(state="visible", timeout=3000)

    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == leg, what="target's leg gone")


@pytest.mark.timeout(90)
async def test_given_abusive_caller_when_operator_warns_twice_then_call_ends_with_goodbye_heard(
        app, app_runner, parties, ari, browser, page_shots):
    callers, phones, observer = parties
    page = await signed_in(page_shots, browser, app_runner.base_url, "operator1")
    ours, call_id = await connected_call(callers, ari)
    await page.locator("#call-details").wait_for(state="visible", timeout=1000)

    await page.click("#warn")
    await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                            and e["playback"]["media_uri"].endswith("/warning-abuse")
                            and e["playback"]["id"].startswith(call_id + "~"),
                            timeout=20, what="the polite warning played")
    await page.wait_for_function(
        "document.getElementById('warn-state').textContent.includes('warned once')",
        timeout=3000)
    await page.wait_for_function("!document.getElementById('warn').disabled", timeout=5000)
    # the second press: the goodbye is said to the caller to its end, then the call ends
    # (that it is audible on the caller's line is measured by the warning's own tests)
    await page.click("#warn")
    goodbye = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished"
        and e["playback"]["media_uri"].endswith("/warning-goodbye")
        and e["playback"]["id"].startswith(call_id + "~"), timeout=20,
        what="the goodbye played to the caller")
    assert goodbye["playback"]["state"] == "done"
    ended = await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                    and e["channel"]["id"] == call_id, what="the call ended")
    assert ended["_t"] >= goodbye["_t"]
    await page.locator("#no-call").wait_for(state="visible", timeout=3000)


async def test_given_signed_in_operator_when_pausing_and_hearing_a_message_then_page_follows(
        app, app_runner, browser, page_shots):
    message = await app[voicemails_key].create(
        Voicemail("rec-console", "PJSIP/operator1", "+12125550100", "Ann Lee", duration=12.0))
    page = await signed_in(page_shots, browser, app_runner.base_url, "operator1")
    item = page.locator(f"#voicemails li[data-id='{message.id}']")
    assert "Ann Lee" in await item.inner_text()
    assert await item.locator("audio").get_attribute("src") == (
        f"/api/voicemails/{message.id}/audio")

    # pause with a reason, unpause: the state and its buttons follow
    reason = app[policy_key].operators.pause_reasons[0]
    await page.select_option("#pause-reason", reason)
    await page.click("#pause")
    await page.wait_for_function(
        "document.getElementById('activity').textContent === 'paused'", timeout=3000)
    assert reason in await page.inner_text("#state-detail")
    assert await page.locator("#pause").is_disabled()
    # a page behind the truth (a button still enabled): the API's 409 is said in the page
    await page.evaluate("document.getElementById('login').disabled = false")
    await page.click("#login")
    await page.locator("#error").wait_for(state="visible", timeout=3000)
    assert "(wrong-operator-state)" in await page.inner_text("#error")
    await page.click("#unpause")
    await page.wait_for_function(
        "document.getElementById('activity').textContent === 'ready'", timeout=3000)

    # the message marked heard: kept, no longer new
    await item.locator("button.mark-heard").click()
    await page.locator(f"#voicemails li.heard[data-id='{message.id}']").wait_for(timeout=3000)
    assert (await app[voicemails_key].get(message.id)).heard is True
