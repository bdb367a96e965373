"""Redis or Asterisk going away never hangs or wedges the app (issue 9, sections 2, 3 and 6).

Against the real sandbox: Redis killed (SIGKILL) or stopped (SIGSTOP) while a caller is on
hold, Asterisk restarted while Redis is down. Every Redis-backed route answers a JSON 503
`storage-unavailable` within 2 s, /healthz says which part is down, the held caller keeps
the music (heard on a recording of their leg) and gets the check-ins again once Redis is back,
nothing acknowledged before the outage is lost, and the app serves a new call without a
restart.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from ari_app.callback.keys import callback_calls_key
from ari_app.inbound.keys import inbound_key
from ari_app.keys import events_key
from conftest import API_TOKEN, _wait_phones_registered
from harness import assert_music, record_heard_since, until
from test_callback import (PHONE, callback_done, callback_due, callback_let_go,
                           callback_put_through)
from test_first_call import talk_bridge_with
from test_hold import connected_call, wait_prompt as wait_hold_prompt
from test_queue import QUEUE, busy_operator, queued, started, wait_prompt
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration
CHECK_INS = ("[hold]\ncheck_in_interval = 4\nfallback_after = 60\n"
             "[callback]\nallowed_countries = [\"US\"]\n")
# a queue too: its dispatcher waits for Redis like everything else, GET /api/queues is a 503
WITH_QUEUE = CHECK_INS + '[[queues]]\nname = "sales"\nhours = "00:00-23:59"\n'
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def timed(method: str, url: str, **kwargs) -> tuple[int, dict, float, str]:
    """One request as a client would make it: (status, JSON body, seconds, content type)."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        async with session.request(method, url, **kwargs) as resp:
            body = await resp.json(content_type=None)
            return resp.status, body, time.monotonic() - started, resp.content_type


async def hold_snapshot(redis, call_id: str) -> dict | None:
    raw = await redis.get(KEYS.snapshot("hold", call_id))
    return json.loads(raw) if raw else None


def aof_holds(redis_dir: Path, text: str) -> bool:
    """Redis has written `text` to its append-only files (what a crash cannot take back)."""
    return any(text.encode() in f.read_bytes() for f in redis_dir.rglob("*.aof*") if f.is_file())


async def held_caller_in_music(app_runner, redis, observer, callers, ari):
    """A connected call put on hold whose first check-in has played and whose music is back."""
    ours, call_id = await connected_call(callers, ari)
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    assert status == 202
    await wait_hold_prompt(observer, call_id, "checkin-1", timeout=30)
    await until(lambda: _holding_after(redis, call_id, 1), 10, "music back after check-in 1")
    return ours, call_id


async def _holding_after(redis, call_id: str, check_ins: int) -> bool:
    snap = await hold_snapshot(redis, call_id)
    return bool(snap and snap["state"] == "holding" and len(snap["check_ins"]) == check_ins)


async def accepted_callback(base: str) -> str:
    status, body, _, _ = await timed("POST", base + "/api/callbacks", headers=AUTH,
                                     json={"number": "+12125550142", "name": "Before Outage"})
    assert status == 201, body
    return body["id"]


async def assert_storage_503_everywhere(base: str, call_id: str, request_id: str) -> None:
    routes = [("POST", "/api/callbacks", {"json": {"number": "+12125550143"}}),
              ("GET", "/api/calls", {}),
              ("GET", f"/api/callbacks/{request_id}", {}),
              ("GET", "/api/voicemails", {}),
              ("GET", "/api/customers/+12125550142", {}),
              ("DELETE", f"/api/calls/{call_id}/hold", {}),
              ("GET", "/api/operators", {}),
              ("GET", "/api/queues", {}),
              ("POST", "/api/operators/operator1/pause", {"json": {"reason": "break"}})]
    for method, path, extra in routes:
        status, body, took, kind = await timed(method, base + path, headers=AUTH, **extra)
        assert kind == "application/json", (method, path, kind)
        assert (status, body.get("error_id")) == (503, "storage-unavailable"), (method, path, body)
        assert body.get("message"), body
        assert took < 2.0, f"{method} {path} took {took:.2f} s"
    status, health, took, _ = await timed("GET", base + "/healthz")
    assert status == 503 and health["redis"].startswith("unavailable"), health
    assert any(p.startswith("redis:") for p in health["problems"]), health
    assert took < 2.0, took


@pytest.mark.policy(WITH_QUEUE)
async def test_redis_killed_mid_call(app, app_runner, parties, ari, redis, sandbox, spool):
    instance, _ = sandbox
    callers, phones, observer = parties
    request_id = await accepted_callback(app_runner.base_url)
    await until(lambda: aof_holds(instance.dir / "redis", request_id), 5,
                "the request fsynced to the append-only file")
    ours, call_id = await held_caller_in_music(app_runner, redis, observer, callers, ari)

    instance.stop_redis()
    try:
        await assert_storage_503_everywhere(app_runner.base_url, call_id, request_id)
        # the caller keeps the music while storage is away; the due check-in waits for it
        levels, _ = await record_heard_since(callers, ours, 5, spool)
        assert_music(levels[5:], "on hold while Redis is down")
    finally:
        instance.start_redis()
    back = time.time()

    # Redis back: the check-in that was due plays (late, not never), then the usual cadence
    await wait_hold_prompt(observer, call_id, "checkin-2", "PlaybackStarted", timeout=15,
                           after=back)
    await wait_hold_prompt(observer, call_id, "checkin-3", "PlaybackStarted", timeout=20,
                           after=back)
    status, health, _, _ = await timed("GET", app_runner.base_url + "/healthz")
    assert (status, health["redis"]) == (200, "ok"), health
    # nothing acknowledged before the outage is lost
    status, body, _, _ = await timed("GET", f"{app_runner.base_url}/api/callbacks/{request_id}")
    assert (status, body["status"]) == (200, "pending"), body
    await callers.hang_up(ours)


@pytest.mark.policy(WITH_QUEUE)
async def test_redis_stopped_mid_call(app, app_runner, parties, ari, redis, sandbox, spool):
    """SIGSTOP: Redis takes connections and never answers; without timeouts every request
    hung. Now each answers 503 within 2 s, and the call goes on once Redis does."""
    instance, _ = sandbox
    callers, phones, observer = parties
    request_id = await accepted_callback(app_runner.base_url)
    ours, call_id = await held_caller_in_music(app_runner, redis, observer, callers, ari)

    instance.pause_redis()
    try:
        await assert_storage_503_everywhere(app_runner.base_url, call_id, request_id)
        levels, _ = await record_heard_since(callers, ours, 5, spool)
        assert_music(levels[5:], "on hold while Redis is stopped")
    finally:
        instance.pause_redis(False)
    back = time.time()
    await wait_hold_prompt(observer, call_id, "checkin-2", "PlaybackStarted", timeout=15,
                           after=back)
    # and the caller is still served: resume brings them back to the operator. Redis works
    # through what piled up while it was stopped, so the first answers may still be a 503
    # with Retry-After: a client retries, as it is told to.
    await until(lambda: _healthy(app_runner.base_url), 10, "Redis answering again")
    status, body = await until(lambda: _resumed(app_runner, call_id), 10, "resume accepted")
    assert (status, body["status"]) == (202, "held"), body
    await wait_hold_prompt(observer, call_id, "hold-resume-thanks", timeout=15)
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")
    await callers.hang_up(ours)


async def _resumed(app_runner, call_id: str):
    status, body = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    if status == 503 and body.get("error_id") == "storage-unavailable":
        return None
    return status, body


def stop_redis_after(instance, what: str):
    """Wrap an awaitable step so that Redis is stopped (SIGSTOP) right after it, once: the
    fault lands inside a call's step, after its snapshot was saved and before its actions'
    own Redis work."""
    def wrap(real, wanted):
        fired = []

        async def then_stop(*args, **kwargs):
            result = await real(*args, **kwargs)
            if not fired and wanted(*args, **kwargs):
                fired.append(what)
                instance.pause_redis()
            return result
        return then_stop, fired
    return wrap


class Published:
    """The call events of one call, as the dashboard and the metrics get them."""

    def __init__(self, call_id: str) -> None:
        self.call_id, self.events = call_id, []

    def on_event(self, event) -> None:
        if event.call_id == self.call_id:
            self.events.append(event)


async def stalled_then_resumed(app, instance, call_id: str, timeout: float) -> float:
    """Once the call's lane waits for storage, Redis goes on; when it did."""
    lanes = app[inbound_key].lanes
    try:
        await until(lambda: lanes.stalled(call_id), timeout, "the call waiting for storage")
    finally:
        instance.pause_redis(False)
    return time.time()


@pytest.mark.policy(QUEUE)
async def test_given_redis_stops_inside_a_check_in_when_back_then_the_check_in_plays(
        app, parties, ari, sandbox):
    """The check-in's step saved "checking in", then its position lookup met a stopped Redis.
    Its retry used to find the machine already checking in, to which the timer meant nothing:
    the caller never heard a check-in again. Now the retry starts from the snapshot before the
    step, and the check-in plays once, then the usual cadence."""
    instance, _ = sandbox
    callers, _, observer = parties
    first, _ = await busy_operator(parties, ari)
    ours, call_id = await queued(parties, "+12125550101", 1)
    published = Published(call_id)
    app[inbound_key].events.events.subscribe(published)
    store = app[inbound_key].rules.rule("queue").store
    store.save, fired = stop_redis_after(instance, "check-in saved")(
        store.save, lambda machine: machine.call_id == call_id
        and machine.state.value == "checking_in")

    back = await stalled_then_resumed(app, instance, call_id, timeout=15)
    assert fired, "Redis stopped inside the check-in's step"
    checkin = await wait_prompt(observer, call_id, "queue-checkin-", timeout=15, since=back)
    await wait_prompt(observer, call_id, "queue-checkin-", timeout=10, since=checkin["_t"] + 0.5)
    assert len(started(observer, call_id, "queue-checkin-", since=back)) == 2, \
        "each check-in once, none twice"
    # the step cut short and its retry are one step: its state change is published once
    assert [e.at <= checkin["_t"] for e in published.events
            if (e.name, e.new) == ("queue:state_changed", "checking_in")] == [True, False]
    await callers.hang_up(ours)
    await callers.hang_up(first)


@pytest.mark.policy(QUEUE)
async def test_given_redis_stops_inside_a_calls_end_when_back_then_bridge_gone_and_operator_free(
        app, parties, ari, redis, sandbox):
    """The caller hung up; the call's end hung up the operator, then met a stopped Redis
    freeing them. Its retry used to find the call ended, so the talk bridge stayed and the
    call's key too. Now the end runs again whole: the operator is freed (the next caller
    is put through to them), the bridge is destroyed, nothing of the call stays in Redis."""
    instance, _ = sandbox
    callers, _, _ = parties
    ours, call_id = await busy_operator(parties, ari)
    operators = app[inbound_key].services.operators
    operators.release, fired = stop_redis_after(instance, "operator freed")(
        operators.release, lambda endpoint, call, after: call == call_id)

    await callers.hang_up(ours)
    await stalled_then_resumed(app, instance, call_id, timeout=15)
    assert fired, "Redis stopped inside the call's end"
    await until(lambda: _bridges_gone(ari, call_id), 15, "the call's bridges destroyed")
    await until(lambda: _call_gone(redis, call_id), 10, "the call's snapshot deleted")
    after, after_id = await callers.dial_local("100", number="+12125550109")
    await talk_bridge_with(ari, after_id, f"{after_id}~op1", timeout=20)
    await callers.hang_up(after)


@pytest.mark.dialer
async def test_given_redis_stops_inside_a_callbacks_end_when_back_then_closed_once_and_its_end_published_once(
        app_runner, settings, parties, ari, redis, sandbox):
    """The customer hung up a callback; its end step was published, then met a stopped Redis
    closing the request. The retry runs the end again whole from the snapshot before it (the
    request closed as done, the operator let go), and the dashboard and the metrics get the
    end once, not once per try."""
    instance, _ = sandbox
    _, phones, observer = parties
    app, request_id = await callback_due(app_runner, settings)
    call = await callback_put_through(observer, ari, phones, timeout=30)
    published = Published(request_id)
    app[inbound_key].events.events.subscribe(published)
    attempts = app[callback_calls_key]
    attempts.ownership.confirm, fired = stop_redis_after(instance, "callback's end confirmed")(
        attempts.ownership.confirm, lambda call_id: call_id == call)

    await ari.hangup(phones.answered[PHONE])  # the conversation ends
    try:
        await until(lambda: attempts.lanes.stalled(call), 15, "the attempt waiting for storage")
    finally:
        instance.pause_redis(False)
    assert fired, "Redis stopped inside the callback's end"
    done = await until(callback_done(redis, request_id), 15, "the callback closed as done")
    assert (done["status"], done["outcome"], done["attempts"]) == ("done", "connected", 1)
    await until(callback_let_go(redis, request_id, call), 10, "the attempt let go")
    await attempts.lanes.join()
    ends = [e for e in published.events if (e.name, e.new) == ("callback:state_changed", "ended")]
    assert len(ends) == 1, [(e.name, e.old, e.new) for e in published.events]


async def _bridges_gone(ari, call_id: str) -> bool:
    return not [b for b in await ari.bridges() if b["id"].startswith(call_id)]


async def _call_gone(redis, call_id: str) -> bool:
    return not await redis.exists(KEYS.call(call_id))


async def test_sandbox_up_after_partial_stop_keeps_secrets(app, app_runner, sandbox):
    """`sandbox up` after Redis died used to make new passwords, so the running app could
    never reconnect: now it starts what is missing with the same secrets."""
    instance, state = sandbox
    before = instance.load_state()
    instance.stop_redis()
    status, health, _, _ = await timed("GET", app_runner.base_url + "/healthz")
    assert status == 503, health
    after = instance.up(phones=before.phones)
    assert (after.ari_password, after.redis_password, after.ports) == (
        before.ari_password, before.redis_password, before.ports)
    assert after.asterisk_pid == before.asterisk_pid, "Asterisk kept running"
    await until(lambda: _healthy(app_runner.base_url), 10, "the app healthy again by itself")


async def _healthy(base: str) -> bool:
    status, _, _, _ = await timed("GET", base + "/healthz")
    return status == 200


async def test_asterisk_restart_while_redis_down(app, app_runner, parties, ari, redis, sandbox):
    """The events reader used to die in its resync (Redis down) and the app stayed deaf for
    good. Now it retries; once both are back a new call is greeted and served."""
    instance, _ = sandbox
    callers, phones, observer = parties
    instance.stop_redis()
    try:
        await asyncio.get_running_loop().run_in_executor(None, instance.restart_asterisk)
        # the reader reconnects, its resync fails on Redis, and it keeps trying (it used to
        # die right here); health names both parts meanwhile
        events = app[events_key]
        await until(lambda: (events.last_error or "").startswith("resync after connect failed"),
                    30, "a resync attempt with Redis down")
        status, health, _, _ = await until(
            lambda: _health_problem(app_runner.base_url, "redis:"), 15, "health names redis")
        assert status == 503 and any(p.startswith("ari events: resync") for p in
                                     health["problems"]), health
    finally:
        instance.start_redis()
    await until(lambda: _healthy(app_runner.base_url), 30, "the app reconnected by itself")
    await asyncio.get_running_loop().run_in_executor(None, _wait_phones_registered, instance)
    for party in parties:
        await asyncio.wait_for(party.stream.connected.wait(), 30)
    # a contact registered again is not yet an endpoint Asterisk calls online (the app's
    # free check): until it is, a new caller rightly hears "all operators are busy"
    await until(lambda: _operators_online(ari), 30, "both operators online again")

    ours, call_id = await callers.dial_local("100")
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    tasks = (await timed("GET", app_runner.base_url + "/healthz"))[1]["tasks"]
    assert tasks["ari-events"]["running"] and tasks["ari-events"]["restarts"] == 0, tasks
    await callers.hang_up(ours)


async def _operators_online(ari) -> bool:
    states = [(await ari.endpoint("PJSIP", name)).get("state")
              for name in ("operator1", "operator2")]
    return states == ["online", "online"]


async def _health_problem(base: str, prefix: str):
    answer = await timed("GET", base + "/healthz")
    return answer if any(p.startswith(prefix) for p in answer[1].get("problems", [])) else None


async def test_sigterm_with_redis_down_exits_promptly(settings, sandbox, parties, ari, redis,
                                                      tmp_path):
    """`ari-etiquette run` as an admin starts it: with Redis gone, a call-control request is a
    503 at once and SIGTERM ends the process in seconds (it took 62 s: requests whose lane
    had died were never answered, and shutdown waited for them)."""
    instance, _ = sandbox
    callers, phones, observer = parties
    port = _unused_port()
    env = tmp_path / "app.env"
    env.write_text(
        f"ETIQUETTE_ARI_URL={settings.ari_url}\nETIQUETTE_ARI_USER={settings.ari_user}\n"
        f"ETIQUETTE_ARI_PASSWORD={settings.ari_password.get_secret_value()}\n"
        f"ETIQUETTE_REDIS_URL={settings.redis_url}\nETIQUETTE_POLICY_FILE={settings.policy_file}\n"
        f"ETIQUETTE_TEST_TIME_RANGES=true\nETIQUETTE_HTTP_PORT={port}\n"
        f"ETIQUETTE_API_TOKEN={API_TOKEN}\nETIQUETTE_CALLBACK_DIALER=false\n"
        "ETIQUETTE_LOG_FORMAT=json\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_app.cli", "run", "--env-file", str(env),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    ours = None
    try:
        await until(lambda: _healthy(base), 20, "the app process up")
        ours, call_id = await connected_call(callers, ari)
        instance.stop_redis()
        try:
            status, body, took, _ = await timed("POST", f"{base}/api/calls/{call_id}/hold",
                                                headers=AUTH, json={"reason": "lookup"})
            assert (status, body["error_id"]) == (503, "storage-unavailable"), body
            assert took < 2.0, took
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 20)
            assert code == 0 and time.monotonic() - stopping < 10, time.monotonic() - stopping
        finally:
            instance.start_redis()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if ours is not None:
            await callers.hang_up(ours)
    errors = [line for line in (await proc.stderr.read()).decode().splitlines()
              if '"level": "error"' in line or '"level": "critical"' in line]
    assert errors == [], errors
    # the app left its call in Stasis on purpose (a restart takes it back): end it here
    for channel in await ari.channels():
        await callers.hang_up(channel["id"])
    await until(lambda: _no_channels(ari), 10, "the call's channels gone")
    for bridge in await ari.bridges():
        await ari.destroy_bridge(bridge["id"])
    await redis.flushdb()


async def _no_channels(ari) -> bool:
    return not await ari.channels()


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
