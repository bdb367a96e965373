"""Restart-safe hold: kill -9 the app while callers are on hold, start it again: every caller is
still connected, check-ins resume from the state in Redis, and no caller goes longer than one
interval plus a few seconds without a check-in."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from conftest import API_TOKEN
from harness import log_errors
from test_first_call import prompt_of, talk_bridge_with
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration
INTERVAL = 2.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _start_app(settings, port: int, log: Path) -> asyncio.subprocess.Process:
    """`ari-etiquette run`, as a process of its own, so that it can be killed for real; its
    JSON log in `log` (an error line in it fails the test: harness.log_errors)."""
    policy = settings.policy_file.read_text().replace("fallback_after = 7", "fallback_after = 60")
    settings.policy_file.write_text(policy)
    env = {**os.environ, "ETIQUETTE_ARI_URL": settings.ari_url,
           "ETIQUETTE_ARI_PASSWORD": settings.ari_password.get_secret_value(),
           "ETIQUETTE_REDIS_URL": settings.redis_url, "ETIQUETTE_POLICY_FILE": str(settings.policy_file),
           "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(port),
           "ETIQUETTE_API_TOKEN": API_TOKEN, "ETIQUETTE_LOG_FORMAT": "json"}
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ari_app.cli", "run", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the app did not come up")


async def _stop(app: asyncio.subprocess.Process) -> None:
    """SIGTERM, and the app is gone within its shutdown limit (never left running for the
    next tests: it would share their Stasis app and Redis)."""
    app.terminate()
    try:
        await asyncio.wait_for(app.wait(), timeout=40)
    except asyncio.TimeoutError:
        app.kill()
        await app.wait()
        raise AssertionError("the app did not exit within 40 s of SIGTERM") from None


async def _hold(port: int, call_id: str) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
        async with s.post(f"http://127.0.0.1:{port}/api/calls/{call_id}/hold",
                          json={"reason": "lookup"}) as resp:
            assert resp.status == 202, await resp.text()


async def test_given_callers_on_hold_when_app_killed_and_restarted_then_check_ins_resume(
        settings, redis, ari, parties, app_runner, tmp_path):
    callers, phones, observer = parties
    port = _port()
    app = await _start_app(settings, port, tmp_path / "app-1.log")
    try:
        calls = []
        for _ in range(2):  # both operators busy with a caller each
            ours, call_id = await callers.dial_local("100")
            await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
            calls.append((ours, call_id))
        for _, call_id in calls:
            await _hold(port, call_id)
        for _, call_id in calls:
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackFinished"
                                    and prompt_of(e) == "checkin-1"
                                    and e["playback"]["target_uri"] == f"channel:{c}",
                                    timeout=20, what="first check-in")

        killed_at = time.time()
        app.send_signal(signal.SIGKILL)
        await app.wait()
        # on purpose: the app stays down a while (the callers go on without it)
        await asyncio.sleep(1.0)
        app = await _start_app(settings, port, tmp_path / "app-2.log")
        down = time.time() - killed_at  # no app at all: nobody can play a check-in

        for ours, call_id in calls:  # two more check-ins each, after the restart
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackStarted"
                                    and prompt_of(e) == "checkin-3"
                                    and e["playback"]["target_uri"] == f"channel:{c}",
                                    timeout=30, what="check-ins after the restart")
            assert ours in {c["id"] for c in await ari.channels()}, "caller dropped"
            gaps = _music_gaps(observer, call_id)
            assert len(gaps) >= 2
            # never longer than one interval, plus the time no app ran, without a check-in
            # (how long a process takes to start varies with the machine's load)
            assert max(gaps) <= INTERVAL + down + 0.5, (gaps, down)
        assert await redis.exists(KEYS.snapshot("hold", calls[0][1]))
        await _hang_up_while_app_runs(callers, observer, redis, calls)
    finally:
        await _stop(app)
    for log in ("app-1.log", "app-2.log"):
        assert log_errors(tmp_path / log) == [], (log, log_errors(tmp_path / log))


async def _hang_up_while_app_runs(callers, observer, redis, calls,
                                  other_leg: str | None = None) -> None:
    """The callers hang up while the restarted app runs: it lets the other party go and
    forgets the call (the app fixture then checks nothing is left; an app stopped before that
    leaves its calls in Redis for the next one, on purpose)."""
    for ours, call_id in calls:
        await callers.hang_up(ours)
        leg = other_leg or f"{call_id}~op1"
        await observer.wait_for(lambda e, c=leg: e.get("type") == "ChannelDestroyed"
                                and e["channel"]["id"] == c, timeout=15,
                                what="the other party released by the restarted app")
        deadline = time.monotonic() + 10
        while await redis.sismember(KEYS.live_calls(), call_id):  # polling Redis, bounded
            assert time.monotonic() < deadline, f"the restarted app never forgot {call_id}"
            await asyncio.sleep(0.1)


def _music_gaps(observer, call_id: str) -> list[float]:
    """Seconds of music between the end of one prompt and the start of the next check-in."""
    events = [e for e in observer.events if e.get("type") in ("PlaybackStarted", "PlaybackFinished")
              and e["playback"]["target_uri"] == f"channel:{call_id}"]
    gaps, ended = [], None
    for e in events:
        if e["type"] == "PlaybackFinished":
            ended = e["_t"]
        elif prompt_of(e).startswith("checkin") and ended is not None:
            gaps.append(e["_t"] - ended)
    return gaps


async def test_given_attended_transfer_in_consultation_when_app_killed_and_restarted_then_operator_completes_it(
        settings, redis, ari, parties, app_runner, tmp_path):
    """The transfer's state is in Redis too: a restarted app takes the consultation back, keeps
    the caller's music and check-ins going, and completes the transfer when asked."""
    callers, phones, observer = parties
    settings.policy_file.write_text(settings.policy_file.read_text().replace(
        "[transfer]\n", '[transfer]\nmode = "attended"\n'))
    port = _port()
    app = await _start_app(settings, port, tmp_path / "app-1.log")
    try:
        ours, call_id = await callers.dial_local("100")
        await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
            async with s.post(f"http://127.0.0.1:{port}/api/calls/{call_id}/transfer",
                              json={"target": "billing"}) as resp:
                assert resp.status == 202, await resp.text()
        leg = f"{call_id}~tx1"
        await talk_bridge_with(ari, f"{call_id}~op1", leg, timeout=40)  # consulting

        app.send_signal(signal.SIGKILL)
        await app.wait()
        # on purpose: the app stays down a while (the callers go on without it)
        await asyncio.sleep(1.0)
        app = await _start_app(settings, port, tmp_path / "app-2.log")
        assert await redis.exists(KEYS.snapshot("transfer", call_id))
        restarted = time.time()
        # the caller still hears the transfer's check-ins while the operator consults
        await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                and prompt_of(e).startswith("transfer-checkin")
                                and e["playback"]["target_uri"] == f"channel:{call_id}"
                                and e["_t"] > restarted, timeout=20,
                                what="a check-in after the restart")

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
            async with s.post(f"http://127.0.0.1:{port}/api/calls/{call_id}/transfer/complete") \
                    as resp:
                assert resp.status == 202, await resp.text()
        await talk_bridge_with(ari, call_id, leg, timeout=20)
        assert ours in {c["id"] for c in await ari.channels()}, "caller dropped"
        await _hang_up_while_app_runs(callers, observer, redis, [(ours, call_id)], leg)
    finally:
        await _stop(app)
    for log in ("app-1.log", "app-2.log"):
        assert log_errors(tmp_path / log) == [], (log, log_errors(tmp_path / log))
