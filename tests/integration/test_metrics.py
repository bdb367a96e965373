"""`/metrics` against the real Asterisk: a call put on hold with two check-ins is counted (the
call, the hold with its reason, two check-ins and their lateness), in Prometheus' text format,
without a call id or an operator in it; a hold without a reason is a breach; a dropped events
WebSocket is one reconnect."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ari_app.inbound.keys import inbound_key
from ari_app.keys import events_key

from test_first_call import talk_bridge_with
from test_hold import connected_call, wait_prompt

pytestmark = pytest.mark.integration
SHORT_HOLD = "[hold]\ncheck_in_interval = 2\nfallback_after = 60\n"


async def scrape(app_runner) -> str:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(app_runner.base_url + "/metrics") as resp:  # no token needed
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return await resp.text()


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name} {labels}")


@pytest.mark.policy(SHORT_HOLD)
async def test_given_hold_with_two_check_ins_when_metrics_scraped_then_call_hold_and_check_ins_counted(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    before = await scrape(app_runner)
    assert sample(before, "etiquette_calls_total") == 0
    assert sample(before, "etiquette_holds_total", reason_given="true") == 0

    ours, call_id = await connected_call(callers, ari)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    assert status == 202, body
    intro = await wait_prompt(observer, call_id, "hold-intro")
    first = await wait_prompt(observer, call_id, "checkin-1", after=intro["_t"])
    await wait_prompt(observer, call_id, "checkin-2", "PlaybackStarted", after=first["_t"])
    # Asterisk may tell the observer the prompt started before the app's step that asked for
    # it has counted it: that step runs in the call's lane
    await app[inbound_key].lanes.join()

    text = await scrape(app_runner)
    assert sample(text, "etiquette_calls_total") == 1
    assert sample(text, "etiquette_holds_total", reason_given="true") == 1
    assert sample(text, "etiquette_holds_total", reason_given="false") == 0
    assert sample(text, "etiquette_check_ins_total", rule="hold") == 2
    assert sample(text, "etiquette_check_in_lateness_seconds_count", rule="hold") == 2
    lateness = sample(text, "etiquette_check_in_lateness_seconds_sum", rule="hold")
    assert 0 <= lateness < 1.0, f"two check-ins {lateness:.3f} s late in all"
    assert sample(text, "etiquette_check_in_lateness_seconds_bucket", rule="hold", le="+Inf") == 2
    assert "etiquette_breaches_total{" not in text, "a hold with a reason is no breach"
    assert sample(text, "etiquette_ari_reconnects_total") == 0
    assert sample(text, "etiquette_event_loop_lag_seconds_count") >= 0
    # aggregates only: nothing names the call, the caller or the operator
    assert call_id not in text and "operator1" not in text and "PJSIP" not in text

    status, _ = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    assert status == 202
    await wait_prompt(observer, call_id, "hold-resume-thanks")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await callers.hang_up(ours)


async def test_given_hold_without_reason_when_metrics_scraped_then_breach_counted_by_what(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold", {})
    assert status == 202, body
    await wait_prompt(observer, call_id, "hold-intro")

    text = await scrape(app_runner)
    assert sample(text, "etiquette_holds_total", reason_given="false") == 1
    assert sample(text, "etiquette_breaches_total", what="hold_without_a_reason") == 1

    status, _ = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    assert status == 202
    await wait_prompt(observer, call_id, "hold-resume-thanks")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await callers.hang_up(ours)


async def test_given_events_websocket_dropped_when_metrics_scraped_then_one_reconnect(
        app, app_runner):
    events = app[events_key]
    await events.drop()
    for _ in range(50):
        if events.connects == 2 and events.connected.is_set():
            break
        await asyncio.sleep(0.1)
    assert events.connects == 2
    text = await scrape(app_runner)
    assert sample(text, "etiquette_ari_reconnects_total") == 1
    await app[inbound_key].lanes.join()
