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

from ari_app.inbound.keys import store_key
from ari_app.queue.keys import queues_key
from ari_app.storage import Keyspace

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
"""


async def timeline(app, call_id: str) -> list[dict]:
    return await app[store_key].timeline(call_id)


async def steps(app, call_id: str, rule: str = "queue") -> list[dict]:
    return [e for e in await timeline(app, call_id) if e.get("rule") == rule]


def started(observer, call_id: str, prompt: str, since: float = 0.0) -> list[dict]:
    return [e for e in observer.of_type("PlaybackStarted")
            if e["playback"]["id"].startswith(call_id + "~") and prompt_of(e) == prompt
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
