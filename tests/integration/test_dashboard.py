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

from test_queue import QUEUE, busy_operator, queued, wait_prompt
from test_first_call import talk_bridge_with

pytestmark = pytest.mark.integration


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

    body = await until(app_runner, lambda b: this_hour(b)["answered"] == 1
                       and this_hour(b)["abandoned"] == 1, what="one answered, one abandoned")
    hour = this_hour(body)
    assert hour["calls"] == 3 and hour["queued"] == 2 and hour["waits"] == 2
    assert hour["holds"] == 1 and hour["mean_hold"] is not None
    assert sum(hour["wait_buckets"].values()) == 2
    assert sum(hour["hold_buckets"].values()) == 1
    today = sales(body)["today"]
    assert (today["queued"], today["answered"], today["abandoned"]) == (2, 1, 1)
    assert len(body["today"]) == 24
    assert sum(h["calls"] for h in body["today"]) == 3
