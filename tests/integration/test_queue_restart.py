"""The queue outlives the app: kill -9 it while a caller waits in line, start it again: the
caller is still in line at their place, hears the check-ins again, and is put through when the
operator frees up."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.storage import Keyspace

from conftest import API_TOKEN
from harness import AppProcess
from test_first_call import talk_bridge_with
from test_queue import QUEUE, busy_operator, queued, started

pytestmark = pytest.mark.integration
KEYS = Keyspace()


@pytest.mark.timeout(180)
@pytest.mark.policy(QUEUE)
async def test_given_caller_in_line_when_app_killed_and_restarted_then_place_kept_and_put_through(
        settings, parties, ari, redis, tmp_path):
    callers, phones, observer = parties
    app = AppProcess(settings, tmp_path, settings.ari_app, API_TOKEN)
    await app.start()
    try:
        first, _ = await busy_operator(parties, ari)
        before, before_id = await queued(parties, "+12125550101", 1)
        ours, call_id = await queued(parties, "+12125550102", 2)
        app.proc.kill()  # no goodbye: whatever was in memory is gone
        await app.proc.wait()
        killed = time.time()

        app = AppProcess(settings, tmp_path, settings.ari_app, API_TOKEN)
        await app.start()
        # the check-ins come back for both, from the state in Redis
        for waiting in (before_id, call_id):
            await observer.wait_for(
                lambda e, w=waiting: e.get("type") == "PlaybackStarted"
                and e["playback"]["id"].startswith(f"{w}~")
                and e["playback"]["id"].rsplit("~", 1)[-1].startswith("queue-checkin-")
                and e["_t"] > killed, timeout=30, what=f"a check-in for {waiting} after the restart")
        # the operator frees up: the one who came first is put through first
        await callers.hang_up(first)
        await talk_bridge_with(ari, before_id, f"{before_id}~qop1", timeout=25)
        await callers.hang_up(before)
        await talk_bridge_with(ari, call_id, f"{call_id}~qop1", timeout=25)
        assert started(observer, call_id, "queue-connecting")
        await callers.hang_up(ours)
        deadline = time.monotonic() + 10
        while (await ari.channels() or await redis.exists(KEYS.live_calls())) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # polling until the app has let everything go
        assert not await ari.channels() and not await ari.bridges()
        assert not await redis.exists(KEYS.live_calls(), KEYS.queue_line("sales"),
                                      KEYS.queue_offers())
        assert not [k async for k in redis.scan_iter(KEYS.operator("*"))], "an operator kept"
    finally:
        code = await app.stop()
    assert code == 0 and app.error_lines() == [], app.error_lines()
    await redis.flushdb()
