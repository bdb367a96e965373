"""The supervisor dashboard against the real Asterisk and Redis, and in a real browser (Debian's
Chromium, driven by Playwright): a supervisor sees a waiting caller appear within a second of
entering the queue, their wait counting, and leave when they hang up; an operator is refused
the dashboard; the snapshot shows an operator's hold with its timers, and today's figures
count the calls, the answered and the abandoned.

The queue's policy is test_queue.py's: operator1 alone serves "sales", so a caller who finds
operator1 talking waits."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.escalation.keys import complaints_key
from ari_app.escalation.service import Complaint
from ari_app.storage import Keyspace
from test_queue import QUEUE, busy_operator, queued, wait_prompt
from test_first_call import talk_bridge_with

pytestmark = pytest.mark.integration
KEYS = Keyspace()


async def snapshot(app_runner) -> dict:
    status, body = await app_runner.api("GET", "/api/dashboard")
    assert status == 200, body
    return body


async def until(app_runner, check, timeout: float = 10.0, what: str = "") -> dict:
    """The first snapshot `check` accepts, polled until `timeout` (the figures are written by
    their own task shortly after each event)."""
    deadline = time.monotonic() + timeout
    while True:
        body = await snapshot(app_runner)
        if check(body):
            return body
        if time.monotonic() >= deadline:
            raise AssertionError(f"dashboard never showed {what}: {body}")
        await asyncio.sleep(0.1)  # polling the snapshot until the deadline


def sales(body: dict) -> dict:
    return {q["name"]: q for q in body["queues"]}["sales"]


def this_hour(body: dict) -> dict:
    hour = time.strftime("%Y-%m-%dT%H", time.gmtime(body["now"]))
    return {h["hour"]: h for h in body["today"]}[hour]


def operator(body: dict, endpoint: str = "PJSIP/operator1") -> dict:
    return {o["endpoint"]: o for o in body["operators"]}[endpoint]


@pytest.mark.policy(QUEUE)
@pytest.mark.timeout(120)
async def test_given_calls_when_answered_abandoned_and_held_then_snapshot_and_todays_figures(
        app, app_runner, parties, ari):
    callers, _, observer = parties
    first, first_id = await busy_operator(parties, ari)

    # the operator puts their caller on hold: the dashboard shows it, with its timers, and
    # (the test policy's way out comes after 7 s) nearing the way out
    status, body = await app_runner.api("POST", f"/api/calls/{first_id}/hold",
                                        {"reason": "lookup"})
    assert status == 202, body
    body = await until(app_runner, lambda b: operator(b)["holds"], what="the hold")
    [hold] = operator(body)["holds"]
    assert hold["call_id"] == first_id and hold["reason"] == "lookup"
    assert hold["started_at"] <= body["now"] < hold["way_out_at"]
    assert hold["way_out_after"] == 7 and hold["nearing_way_out"] is True
    status, body = await app_runner.api("DELETE", f"/api/calls/{first_id}/hold")
    assert status == 202, body
    await until(app_runner, lambda b: not operator(b)["holds"], what="the hold ended")

    # two callers wait; the second hangs up (abandoned); the first is put through
    waiting, waiting_id = await queued(parties, "+12125550101", 1)
    leaving, leaving_id = await queued(parties, "+12125550102", 2)
    body = await snapshot(app_runner)
    assert [w["id"] for w in sales(body)["waiting"]] == [waiting_id, leaving_id]
    assert sales(body)["longest_wait"] >= sales(body)["waiting"][1]["waited"]
    assert sales(body)["estimate"]["said"] in ("minutes", "none", "less-than-a-minute")
    await callers.hang_up(leaving)
    await until(app_runner, lambda b: [w["id"] for w in sales(b)["waiting"]] == [waiting_id],
                what="the caller who hung up gone")
    await callers.hang_up(first)
    await talk_bridge_with(ari, waiting_id, f"{waiting_id}~qop1", timeout=20)
    await wait_prompt(observer, waiting_id, "queue-whisper", "PlaybackFinished")
    await callers.hang_up(waiting)

    # answered: the first call (put through at once) and the queue's first caller
    body = await until(app_runner, lambda b: this_hour(b)["answered"] == 2
                       and this_hour(b)["abandoned"] == 1, what="two answered, one abandoned")
    hour = this_hour(body)
    assert hour["calls"] == 3 and hour["queued"] == 2 and hour["waits"] == 2
    assert hour["holds"] == 1 and hour["mean_hold"] is not None
    assert sum(hour["wait_buckets"].values()) == 2
    assert sum(hour["hold_buckets"].values()) == 1
    today = sales(body)["today"]
    # the queue's own: the first call too (a free operator of sales took it: in time), and
    # its caller who waited
    assert (today["queued"], today["answered"], today["abandoned"]) == (2, 2, 1)
    assert today["within_service_level"] >= 1
    assert len(body["today"]) == 24
    assert sum(h["calls"] for h in body["today"]) == 3


async def sign_in(page, user: str) -> None:
    """Through the page's sign-in form, as a person would (the password of U is "pw-U")."""
    await page.locator("#signin-user").wait_for(timeout=10_000)
    await page.fill("#signin-user", user)
    await page.fill("#signin-password", "pw-" + user)
    await page.click("#signin-button")


@pytest.mark.policy(QUEUE)
@pytest.mark.timeout(120)
async def test_given_supervisor_on_dashboard_when_caller_waits_then_appears_counts_and_leaves(
        app, app_runner, parties, ari, browser, page_shots):
    callers, _, observer = parties
    page = await page_shots.new_page(browser)
    await page.goto(app_runner.base_url + "/dashboard")
    await sign_in(page, "supervisor1")
    await page.locator('[data-queue="sales"]').wait_for(timeout=10_000)
    assert "supervisor1" in await page.locator("#who").inner_text()

    first, first_id = await busy_operator(parties, ari)
    ours, call_id = await callers.dial_local("100", number="+12125550101")
    # the caller is in line once they hear their place: on the page within a second
    await wait_prompt(observer, call_id, "queue-entered", timeout=25)
    waiting = page.locator(f'[data-queue="sales"] li[data-call-id="{call_id}"]')
    await waiting.wait_for(timeout=1000)
    assert await page.locator('[data-queue="sales"] .waiting-count').inner_text() == "1"
    # ... their wait counting in the page
    shown = await waiting.locator(".wait").inner_text()
    await page.wait_for_function(
        "([selector, before]) => document.querySelector(selector).textContent !== before",
        arg=[f'li[data-call-id="{call_id}"] .wait', shown], timeout=2500)

    # the caller hangs up: gone from the page
    await callers.hang_up(ours)
    await waiting.wait_for(state="detached", timeout=3000)
    assert await page.locator('[data-queue="sales"] .waiting-count').inner_text() == "0"
    await page.locator('[data-queue="sales"] .abandoned').filter(has_text="1").wait_for(
        timeout=3000)

    # the operator's caller on hold: highlighted (the test policy's way out is 7 s away)
    status, body = await app_runner.api("POST", f"/api/calls/{first_id}/hold",
                                        {"reason": "lookup"})
    assert status == 202, body
    await page.locator(f'tr[data-operator="PJSIP/operator1"] .hold[data-call-id="{first_id}"]'
                       ".nearing").wait_for(timeout=3000)
    status, body = await app_runner.api("DELETE", f"/api/calls/{first_id}/hold")
    assert status == 202, body
    await wait_prompt(observer, first_id, "hold-resume-thanks", "PlaybackFinished")
    await page.locator(f'.hold[data-call-id="{first_id}"]').wait_for(state="detached",
                                                                      timeout=10_000)
    await callers.hang_up(first)


@pytest.mark.timeout(60)
async def test_given_operator_session_when_dashboard_asked_then_refused(
        app, app_runner, browser, page_shots):
    page = await page_shots.new_page(browser)
    await page.goto(app_runner.base_url + "/dashboard")
    await sign_in(page, "operator2")
    why = page.locator("#sign-in .why")
    await page.wait_for_function(
        "document.querySelector('#sign-in .why') && "
        "document.querySelector('#sign-in .why').textContent.includes('for supervisors')")
    assert "signed in as operator" in await why.inner_text()
    assert await page.locator("#board").is_hidden()
    status = await page.evaluate("fetch('/api/dashboard').then(r => r.status)")
    assert status == 403
    # nor the complaints, which are often about them
    status = await page.evaluate("fetch('/api/complaints').then(r => r.status)")
    assert status == 403


@pytest.mark.timeout(60)
async def test_given_an_open_complaint_when_the_supervisor_closes_it_then_gone_with_what_was_done(
        app, app_runner, redis, browser, page_shots):
    """The complaint a caller left is on the dashboard until a supervisor closes it, saying
    what was done; the record keeps who and when."""
    complaint = await app[complaints_key].create(Complaint(
        "call-complaint-1", caller_number="+12125550177", caller_name="Ann Lee",
        operator="PJSIP/operator1"))
    page = await page_shots.new_page(browser)
    await page.goto(app_runner.base_url + "/dashboard")
    await sign_in(page, "supervisor1")
    shown = page.locator(f'#complaints li[data-complaint="{complaint.id}"]')
    await shown.wait_for(timeout=10_000)
    assert "Ann Lee about PJSIP/operator1" in await shown.inner_text()

    await shown.locator("input.resolution").fill("called back, apologised")
    await shown.locator("button.close-complaint").click()
    await shown.wait_for(state="detached", timeout=5000)
    await page.locator("#complaints li.empty").wait_for(timeout=5000)
    closed = await app[complaints_key].get(complaint.id)
    assert (closed.status, closed.closed_by, closed.resolution) == (
        "closed", "supervisor1", "called back, apologised")
    assert closed.closed_at is not None
    await redis.delete(KEYS.record("complaint", complaint.id))
    await redis.zrem(KEYS.record_index("complaint"), complaint.id)
