"""The queue at the shipped policy's times, not shrunk: a check-in every 25 s start to start and
the way out after 90 s in the queue, proven once against the real Asterisk."""

from __future__ import annotations

import pytest

from test_queue import busy_operator, queued, started, steps, wait_prompt

pytestmark = pytest.mark.integration

SHIPPED = """
[operators]
wrap_up = 0

[[queues]]
name = "sales"
operators = ["PJSIP/operator1"]
hours = "00:00-23:59"
"""


@pytest.mark.timeout(200)
@pytest.mark.policy(SHIPPED)
async def test_given_shipped_defaults_when_caller_waits_then_check_ins_every_25_s_and_way_out_at_90_s(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    first, _ = await busy_operator(parties, ari)
    ours, call_id = await queued(parties, "+12125550101", 1)
    [entered] = [e for e in await steps(app, call_id) if e["event"] == "queue entered"]
    menu = await wait_prompt(observer, call_id, "queue-menu", timeout=110)
    check_ins = sorted(e["_t"] for e in started(observer, call_id, "queue-checkin-"))
    gaps = [b - a for a, b in zip(check_ins, check_ins[1:])]
    assert len(check_ins) >= 2 and all(24.5 <= g <= 26.0 for g in gaps), gaps
    # the way out at 90 s in the queue (counted from entering it)
    assert 89.5 <= menu["_t"] - entered["t"] <= 93.0, menu["_t"] - entered["t"]
    await callers.hang_up(ours)
    await callers.hang_up(first)
