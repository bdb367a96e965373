"""A pool of app instances on one Asterisk (ari_app/pool/): real processes, each with its own
ARI app name; callers enter through StasisBroadcast (dialplan context etiquette-pool) and the
first claim wins; an instance killed with -9, or paused past its lease, has its callers taken
over by the survivor: still connected, check-ins resumed, and never two instances acting on
one call."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time

import aiohttp
import pytest

from conftest import API_TOKEN
from harness import AppProcess, log_errors, pool_cli, until
from test_callback import (PHONE, callback_done, callback_let_go, callback_policy,
                           callback_put_through, page_session, post_form)
from test_first_call import prompt_of, talk_bridge_with
from test_queue import QUEUE, started, wait_prompt
from ari_app.calls.pacing import MIN_MUSIC
from ari_app.storage import Keyspace

KEYS = Keyspace()

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

APPS = ("etiquette-pool-1", "etiquette-pool-2")
LEASE = 3.0     # seconds a shard's lease lives: the takeover comes within about this
INTERVAL = 5.0  # the hold's check-in interval here (a takeover must fit inside one)
TAKEOVER = LEASE * 4 / 3 + 1.5  # the longest a survivor takes to act on a dead one's calls


def _policy(settings) -> None:
    text = settings.policy_file.read_text()
    text = text.replace("fallback_after = 7", "fallback_after = 60")
    text = re.sub(r"(?m)^check_in_interval = 2$", f"check_in_interval = {INTERVAL:g}", text)
    settings.policy_file.write_text(text)


def _instance(settings, tmp_path, app: str, **env: str) -> AppProcess:
    return AppProcess(settings, tmp_path, app, API_TOKEN,
                      ETIQUETTE_POOL_APPS=",".join(APPS), ETIQUETTE_POOL_LEASE=str(LEASE),
                      ETIQUETTE_INSTANCE_ID=f"test/{app}", **env)


async def _metric(instance: AppProcess, name: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as s:
        async with s.get(instance.base_url + "/metrics") as resp:
            text = await resp.text()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith(name)}


async def _api(instance: AppProcess, method: str, path: str, json=None) -> tuple[int, dict]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
        async with s.request(method, instance.base_url + path, json=json) as resp:
            return resp.status, await resp.json()


async def _claims(redis, call_id: str, timeout: float = 5.0) -> list[dict]:
    """The call's timeline in Redis (the etiquette log): its pool steps, once written."""
    key = KEYS.timeline(call_id)
    deadline = time.monotonic() + timeout
    while True:  # polling Redis, bounded: the log is written in the background
        steps = [json.loads(x) for x in await redis.lrange(key, 0, -1)]
        if any(s.get("step") == "pool:claimed" for s in steps) or time.monotonic() > deadline:
            return [s for s in steps if s.get("step") == "pool:claimed"]
        await asyncio.sleep(0.1)


async def _stop_all(*instances: AppProcess) -> None:
    for instance in instances:
        if instance.proc is not None and instance.proc.returncode is None:
            instance.proc.send_signal(signal.SIGCONT)
        await instance.stop()


async def test_given_two_instances_when_callers_enter_the_pool_then_each_is_claimed_once(
        settings, redis, ari, parties, app_runner, tmp_path):
    callers, phones, observer = parties
    _policy(settings)
    one, two = (_instance(settings, tmp_path, app) for app in APPS)
    try:
        await asyncio.gather(one.start(), two.start())
        calls = [await callers.dial_local("100", context="etiquette-pool") for _ in range(6)]
        for _, call_id in calls:
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackStarted"
                                    and e["playback"]["target_uri"] == f"channel:{c}",
                                    timeout=20, what="the caller greeted by the pool")
        by_app = {app: 0 for app in APPS}
        for _, call_id in calls:
            claimed = await _claims(redis, call_id)
            assert len(claimed) == 1, (call_id, claimed)  # claimed once, by one instance
            by_app[claimed[0]["app"]] += 1
        # every instance was offered every caller: one claim won, the other told 409
        async def claims_counted() -> tuple[float, float] | None:
            """(won, lost) over both instances, once the losers have counted theirs too:
            an instance counts its lost claim in its own time, unordered with the greeting."""
            won = [await _metric(i, 'etiquette_pool_claims_total{outcome="won"}')
                   for i in (one, two)]
            lost = [await _metric(i, 'etiquette_pool_claims_total{outcome="lost"}')
                    for i in (one, two)]
            counted = tuple(sum(sum(m.values()) for m in side) for side in (won, lost))
            return counted if counted[1] >= len(calls) else None
        assert await until(claims_counted, 5, "every lost claim counted") == (
            len(calls), len(calls))
        print(f"claims by instance: {by_app}")
        for ours, _ in calls:
            await callers.hang_up(ours)
        for _, call_id in calls:
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "ChannelDestroyed"
                                    and e["channel"]["id"] == c, timeout=15, what="call ended")
        await _until_forgotten(redis, [c for _, c in calls])
    finally:
        await _stop_all(one, two)
    for instance in (one, two):
        assert instance.error_lines() == [], instance.error_lines()


async def _until_forgotten(redis, call_ids: list[str], timeout: float = 15.0) -> None:
    keys = Keyspace()
    deadline = time.monotonic() + timeout
    for call_id in call_ids:
        while await redis.sismember(keys.live_calls(), call_id):  # polling Redis, bounded
            assert time.monotonic() < deadline, f"{call_id} never forgotten"
            await asyncio.sleep(0.1)


async def _callers_on_hold(callers, ari, observer, instance: AppProcess, n: int
                           ) -> list[tuple[str, str]]:
    """`n` callers through the pool, each put through to an operator and then on hold (with
    only `instance` running, so all of them are its calls)."""
    calls = []
    for i in range(n):
        ours, call_id = await callers.dial_local("100", context="etiquette-pool")
        await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
        status, body = await _api(instance, "POST", f"/api/calls/{call_id}/hold",
                                  {"reason": "lookup"})
        assert status == 202, body
        calls.append((ours, call_id))
    for _, call_id in calls:
        await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackStarted"
                                and prompt_of(e) == "checkin-1"
                                and e["playback"]["target_uri"] == f"channel:{c}",
                                timeout=20, what="the first check-in")
    return calls


async def _lateness(redis, call_id: str, since: float, timeout: float = 5.0) -> list[float]:
    """How late each hold check-in since `since` started after it was due (the call's
    timeline in Redis: `hold:check_in_played` has when it was due)."""
    key = KEYS.timeline(call_id)
    deadline = time.monotonic() + timeout
    while True:  # polling Redis, bounded: the log is written in the background
        steps = [json.loads(x) for x in await redis.lrange(key, 0, -1)]
        late = [s["t"] - s["due_at"] for s in steps
                if s.get("step") == "hold:check_in_played" and s["t"] > since]
        if late or time.monotonic() > deadline:
            return late
        await asyncio.sleep(0.1)


def _check_ins(observer, call_id: str) -> list[float]:
    return [e["_t"] for e in observer.events if e.get("type") == "PlaybackStarted"
            and prompt_of(e).startswith("checkin")
            and e["playback"]["target_uri"] == f"channel:{call_id}"]


async def test_given_callers_on_hold_when_their_instance_is_killed_then_the_survivor_takes_over(
        settings, redis, ari, parties, app_runner, tmp_path):
    callers, phones, observer = parties
    _policy(settings)
    one, two = (_instance(settings, tmp_path, app) for app in APPS)
    try:
        await one.start()
        calls = await _callers_on_hold(callers, ari, observer, one, 2)
        await two.start()
        status, body = await _api(two, "DELETE", f"/api/calls/{calls[0][1]}/hold")
        assert status == 409 and body["error_id"] == "call-on-another-instance", body

        killed_at = time.time()
        one.proc.send_signal(signal.SIGKILL)
        await one.proc.wait()
        for ours, call_id in calls:
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackStarted"
                                    and prompt_of(e).startswith("checkin")
                                    and e["playback"]["target_uri"] == f"channel:{c}"
                                    and e["_t"] > killed_at,
                                    timeout=3 * INTERVAL + LEASE, what="a check-in by the survivor")
            assert ours in {c["id"] for c in await ari.channels()}, "caller dropped"
        for ours, call_id in calls:
            times = _check_ins(observer, call_id)
            gaps = [b - a for a, b in zip(times, times[1:])]
            before = max(t for t in times if t < killed_at)  # the dead instance's last one
            # at most one check-in missed (two intervals); or, when the check-in playing at
            # the kill (about 6 s, longer than this test's short interval) ended unseen, the
            # survivor sees its end when it takes over, and the music plays its minimum first
            bound = max(2 * INTERVAL, killed_at - before + TAKEOVER + MIN_MUSIC) + 2.0
            assert max(gaps) <= bound, (call_id, gaps, bound)
            late = await _lateness(redis, call_id, killed_at)
            print(f"{call_id}: check-in gaps {[round(g, 1) for g in gaps]} (bound {bound:.1f}), "
                  f"the first after the kill {late[0]:.1f} s after it was due")
            assert late[0] <= TAKEOVER, late  # the takeover's time, no more
        taken = [float(v) for v in (await _metric(two, "etiquette_pool_takeovers_total")).values()]
        assert sum(taken) == len(calls), taken
        # the survivor drives them now: it takes them off hold
        for _, call_id in calls:
            status, body = await _api(two, "DELETE", f"/api/calls/{call_id}/hold")
            assert status == 202, body
        for ours, call_id in calls:
            await callers.hang_up(ours)
        await _until_forgotten(redis, [c for _, c in calls])
        # emptied, the dead instance's app name is handed back (a restarted one gets it)
        await _until_released(redis, APPS[0])
    finally:
        await _stop_all(one, two)
    assert two.error_lines() == [], two.error_lines()


async def _until_released(redis, app: str, timeout: float = 3 * LEASE) -> None:
    key = Keyspace().shards().lease(app)
    deadline = time.monotonic() + timeout
    while await redis.exists(key):  # polling Redis, bounded
        assert time.monotonic() < deadline, f"{app} was never handed back"
        await asyncio.sleep(0.1)


async def _until_serving(instance: AppProcess) -> None:
    """A woken instance holds its own app name again: its /healthz answers 200."""
    deadline = time.monotonic() + 6 * LEASE
    while True:  # polling its /healthz, bounded
        async with aiohttp.ClientSession() as s:
            async with s.get(instance.base_url + "/healthz") as resp:
                if resp.status == 200:
                    return
        assert time.monotonic() < deadline, "the woken instance never got its app back"
        await asyncio.sleep(0.2)


def _dialler_and_other(settings, tmp_path) -> tuple[AppProcess, AppProcess]:
    """Two instances, the callback policy; the first the only dialer: its attempts are in
    its app."""
    _policy(settings)
    callback_policy(settings)
    return (_instance(settings, tmp_path, APPS[0]),
            _instance(settings, tmp_path, APPS[1], ETIQUETTE_CALLBACK_DIALER="false"))


async def _callback_talking(one: AppProcess, two: AppProcess, observer, ari,
                            phones) -> tuple[str, str]:
    """Both up, a request from the form, its attempt put through by `one`: operator and
    customer talking. The request's id and the attempt's call id."""
    await asyncio.gather(one.start(), two.start())
    session, token = await page_session(one.base_url)
    async with session:
        status, body = await post_form(session, one.base_url, token,
                                       {"number": "+1 212 555 0100"})
    assert status == 201, body
    return body["id"], await callback_put_through(observer, ari, phones, timeout=30)


async def test_given_a_callback_talking_when_its_instance_is_killed_and_the_customer_hangs_up_then_the_survivor_closes_it(
        settings, redis, ari, parties, app_runner, tmp_path):
    """The attempt's legs are in the dead instance's app: the survivor that takes that app
    name over takes the attempt up, hears that the customer's leg ended while nobody held
    it, hangs up the operator's and closes the request (they talked: done), the operator
    free, the request's lock given back, the app name handed back once empty."""
    _, phones, observer = parties
    one, two = _dialler_and_other(settings, tmp_path)
    try:
        request, call = await _callback_talking(one, two, observer, ari, phones)

        killed_at = time.time()
        one.proc.send_signal(signal.SIGKILL)
        await one.proc.wait()
        await ari.hangup(phones.answered[PHONE])  # while nobody holds the attempt's app
        await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                and e["channel"]["id"] == f"{call}~cust", what="customer gone")
        freed = await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                        and e["channel"]["id"] == f"{call}~op",
                                        timeout=TAKEOVER + 10,
                                        what="the operator's leg hung up by the survivor")
        print(f"the operator's leg hung up {freed['_t'] - killed_at:.1f} s after the kill "
              f"(lease {LEASE:g} s)")

        record = await until(callback_done(redis, request), 15, "the callback closed as done")
        assert (record["outcome"], record["attempts"]) == ("connected", 1)

        await until(callback_let_go(redis, request, call), 15,
                    "operator1 free, the request unlocked, no snapshot left")
        await _until_released(redis, APPS[0])  # emptied: handed back for its own instance
    finally:
        await _stop_all(one, two)
    assert two.error_lines() == [], two.error_lines()


async def test_given_a_callback_talking_when_its_instance_is_paused_past_its_lease_then_on_waking_it_does_nothing_of_it(
        settings, redis, ari, parties, app_runner, tmp_path):
    """Fencing, for callbacks: the dialling instance is paused (SIGSTOP) while operator and
    customer talk, and the customer hangs up meanwhile. The survivor takes the attempt up and
    closes it; the paused instance, woken still believing it drives the attempt, acts on
    none of it: no leg dialled, the request not touched again, no error (which of its guards
    stops it, the app's lease or the attempt's own, depends on what it reads first)."""
    _, phones, observer = parties
    one, two = _dialler_and_other(settings, tmp_path)
    try:
        request, call = await _callback_talking(one, two, observer, ari, phones)

        one.proc.send_signal(signal.SIGSTOP)
        await ari.hangup(phones.answered[PHONE])  # while the app's holder is paused
        await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                and e["channel"]["id"] == f"{call}~op", timeout=TAKEOVER + 10,
                                what="the operator's leg hung up by the survivor")
        record = await until(callback_done(redis, request), 15, "the callback closed as done")
        one.proc.send_signal(signal.SIGCONT)
        resumed_at = time.time()
        await _until_serving(one)  # woken, it holds its own app name again

        assert await until(callback_done(redis, request), 1, "still done") == record
        assert (record["outcome"], record["attempts"]) == ("connected", 1)
        since = [e["channel"]["id"] for e in observer.of_type("ChannelCreated")
                 if e["channel"]["id"].startswith(call) and e["_t"] > resumed_at]
        assert since == [], f"the woken instance dialled again: {since}"
        log = one.log.read_text()
        assert "shard lease lost" in log or "shard lease not renewed in time" in log, log[-2000:]
        assert not await redis.exists(KEYS.operator("PJSIP/operator1"),
                                      KEYS.callback_lock(request),
                                      KEYS.snapshot("callback-call", call), KEYS.lease(call))
    finally:
        await _stop_all(one, two)
    for instance in (one, two):
        assert instance.error_lines() == [], instance.error_lines()


async def test_given_an_instance_paused_past_its_lease_when_it_resumes_then_it_no_longer_acts(
        settings, redis, ari, parties, app_runner, tmp_path):
    """Fencing: the paused instance's due check-ins, when it wakes up, land nowhere (its
    writes fail with another token, so it carries out nothing), and it lets the calls go."""
    callers, phones, observer = parties
    _policy(settings)
    one, two = (_instance(settings, tmp_path, app) for app in APPS)
    try:
        await one.start()
        calls = await _callers_on_hold(callers, ari, observer, one, 1)
        await two.start()
        one.proc.send_signal(signal.SIGSTOP)
        paused_at = time.time()
        _, call_id = calls[0]
        await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                and prompt_of(e).startswith("checkin")
                                and e["playback"]["target_uri"] == f"channel:{call_id}"
                                and e["_t"] > paused_at + 1,
                                timeout=3 * INTERVAL + LEASE, what="the other instance's check-in")
        one.proc.send_signal(signal.SIGCONT)
        resumed_at = time.time()
        # two more check-ins after the wake-up, and never two within half an interval
        await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                and prompt_of(e).startswith("checkin")
                                and e["playback"]["target_uri"] == f"channel:{call_id}"
                                and e["_t"] > resumed_at + INTERVAL,
                                timeout=3 * INTERVAL, what="check-ins after the wake-up")
        times = _check_ins(observer, call_id)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= INTERVAL / 2, ("two instances played check-ins", gaps)
        assert ours_alive(await ari.channels(), calls[0][0])
        log = one.log.read_text()
        assert "shard lease lost" in log or "shard lease not renewed in time" in log, log[-2000:]
        await callers.hang_up(calls[0][0])
        await _until_forgotten(redis, [call_id])
        await _until_serving(one)  # its own app name back once the survivor emptied it
    finally:
        await _stop_all(one, two)
    for instance in (one, two):
        assert instance.error_lines() == [], instance.error_lines()


def ours_alive(channels: list[dict], ours: str) -> bool:
    return ours in {c["id"] for c in channels}


@pytest.mark.timeout(300)
@pytest.mark.policy(QUEUE.replace("threshold = 40", "threshold = 180")
                    .replace("max_wait = 80", "max_wait = 600")
                    .replace("check_in_interval = 3", f"check_in_interval = {INTERVAL:g}"))
async def test_given_twenty_callers_when_their_instance_is_killed_then_line_and_check_ins_go_on(
        settings, redis, ari, parties, app_runner, tmp_path):
    """One caller talking, nineteen waiting in line, all on the instance that is killed: the
    survivor takes its app name, every caller is still there at the same place, and each
    hears a queue check-in again within one interval of the takeover."""
    callers, phones, observer = parties
    one, two = (_instance(settings, tmp_path, app) for app in APPS)
    waiting: list[tuple[str, str]] = []
    try:
        await one.start()
        talking, talking_id = await callers.dial_local("100", context="etiquette-pool",
                                                       number="+12125550100")
        await talk_bridge_with(ari, talking_id, f"{talking_id}~op1", timeout=20)
        for n in range(19):  # one after the other, so that the line has a known order
            waiting.append(await callers.dial_local("100", context="etiquette-pool",
                                                    number=f"+121255502{n:02d}"))
            await asyncio.sleep(0.05)  # on purpose: arrivals 50 ms apart
        for _, call_id in waiting:  # all past the welcome: waiting, with check-ins
            await wait_prompt(observer, call_id, "queue-checkin-", timeout=60)
        await two.start()
        line = KEYS.queue_line("sales")
        order = [m.decode() for m in await redis.zrange(line, 0, -1)]
        assert len(order) == len(waiting)

        killed_at = time.time()
        one.proc.send_signal(signal.SIGKILL)
        await one.proc.wait()
        resumed, gaps = [], []
        for ours, call_id in waiting:
            event = await wait_prompt(observer, call_id, "queue-checkin-", since=killed_at,
                                      timeout=LEASE + 2 * INTERVAL + 10)
            resumed.append(event["_t"] - killed_at)
            before = [e["_t"] for e in started(observer, call_id, "queue-checkin-")
                      if e["_t"] < killed_at]
            gaps.append(event["_t"] - before[-1])
        alive = {c["id"] for c in await ari.channels()}
        assert all(ours in alive for ours, _ in waiting), "a caller was dropped"
        assert [m.decode() for m in await redis.zrange(line, 0, -1)] == order, "line reordered"
        print(f"queue check-ins after the kill: first {min(resumed):.1f} s, "
              f"last {max(resumed):.1f} s; longest gap {max(gaps):.1f} s "
              f"(interval {INTERVAL:g} s, lease {LEASE:g} s)")
        # nobody misses more than one check-in (under the load of 20 callers: +1.5 s)
        assert max(gaps) <= 2 * INTERVAL + 1.5, gaps
        # the operator frees up: the first in line is put through by the survivor
        await callers.hang_up(talking)
        await talk_bridge_with(ari, waiting[0][1], f"{waiting[0][1]}~qop1", timeout=25)
        for ours, _ in waiting:
            await callers.hang_up(ours)
        await _until_forgotten(redis, [talking_id] + [c for _, c in waiting], timeout=30)
    finally:
        await _stop_all(one, two)
    assert two.error_lines() == [], two.error_lines()


@pytest.mark.policy(QUEUE.replace("threshold = 40", "threshold = 180")
                    .replace("max_wait = 80", "max_wait = 600")
                    .replace("check_in_interval = 3", f"check_in_interval = {INTERVAL:g}"))
async def test_given_an_instance_paused_past_its_lease_when_an_operator_frees_up_then_dialed_once(
        settings, redis, ari, parties, app_runner, tmp_path):
    """Fencing, for dials: a caller waits in line on an instance paused (SIGSTOP) past its
    lease; the survivor takes them over and, when the operator frees up, rings the operator
    for them; the paused instance, woken up, rings nobody: one operator leg for the caller."""
    callers, phones, observer = parties
    one, two = (_instance(settings, tmp_path, app) for app in APPS)
    try:
        await one.start()
        talking, talking_id = await callers.dial_local("100", context="etiquette-pool",
                                                       number="+12125550400")
        await talk_bridge_with(ari, talking_id, f"{talking_id}~op1", timeout=20)
        waiting, waiting_id = await callers.dial_local("100", context="etiquette-pool",
                                                       number="+12125550401")
        await wait_prompt(observer, waiting_id, "queue-checkin-", timeout=30)
        await two.start()
        one.proc.send_signal(signal.SIGSTOP)
        paused_at = time.time()
        await wait_prompt(observer, waiting_id, "queue-checkin-", since=paused_at + 1,
                          timeout=LEASE + 2 * INTERVAL + 5)  # the survivor drives them now
        await callers.hang_up(talking)  # operator1 is free: the survivor rings them for the caller
        await talk_bridge_with(ari, waiting_id, f"{waiting_id}~qop1", timeout=25)
        one.proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while not any(f'"call_id": "{waiting_id}"' in line and "call lost" in line
                      for line in one.log.read_text().splitlines()):  # polling its log, bounded
            assert time.monotonic() < deadline, "the woken instance never let the caller go"
            await asyncio.sleep(0.2)
        await talk_bridge_with(ari, waiting_id, f"{waiting_id}~qop1", timeout=5)  # still so
        await callers.hang_up(waiting)
        await _until_forgotten(redis, [talking_id, waiting_id])
        legs = [e["channel"]["id"] for e in observer.of_type("ChannelCreated")
                if e["channel"]["id"].startswith(f"{waiting_id}~")]
        assert legs == [f"{waiting_id}~qop1"], f"the operator was rung more than once: {legs}"
    finally:
        await _stop_all(one, two)
    for instance in (one, two):
        assert instance.error_lines() == [], instance.error_lines()


async def test_given_pool_desk_context_when_code_dialed_then_an_instance_answers_it_else_the_phone_is_told(
        settings, redis, ari, parties, app_runner, tmp_path):
    """Desk codes in a pool go to whichever instance claims them; with none up, the dialplan
    says the code was not carried out instead of leaving the phone in silence."""
    callers, phones, observer = parties
    one = _instance(settings, tmp_path, APPS[0])
    try:
        await one.start()
        ours, leg = await callers.dial_local("*41", context="etiquette-pool-operators")
        # a Local channel is no operator's phone: the instance says the code is unknown
        await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                and e["playback"]["id"].startswith(f"{leg}~")
                                and prompt_of(e) == "operator-code-unknown",
                                timeout=15, what="the desk code answered by the pool")
        await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                and e["channel"]["id"] == ours, timeout=15, what="hung up")
    finally:
        await one.stop()
    assert one.error_lines() == [], one.error_lines()
    ours, leg = await callers.dial_local("*41", context="etiquette-pool-operators")
    await observer.wait_for(lambda e: e.get("type") == "ChannelDialplan"
                            and e["channel"]["id"] == leg
                            and e.get("dialplan_app") == "Playback"
                            and "operator-state-not-saved" in e.get("dialplan_app_data", ""),
                            timeout=15, what="the phone told nothing was done")
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == ours, timeout=15, what="hung up")


@pytest.mark.timeout(180)
async def test_given_pool_command_when_up_with_sentinel_then_callers_served_and_down_stops_all(
        settings, redis, ari, parties, app_runner, tmp_path):
    """`ari-etiquette pool up --instances 2 --sentinel`: two instances on a Sentinel group, as a
    user would start them to try the pool; `pool down` leaves nothing running."""
    callers, phones, observer = parties
    base = tmp_path / "sandbox.env"
    base.write_text(f"ETIQUETTE_ARI_URL={settings.ari_url}\nETIQUETTE_ARI_USER={settings.ari_user}\n"
                    f"ETIQUETTE_ARI_PASSWORD={settings.ari_password.get_secret_value()}\n"
                    f"ETIQUETTE_REDIS_URL={settings.redis_url}\n")
    directory = tmp_path / "pool"
    cli = pool_cli(settings, directory, API_TOKEN)

    code, out = await cli("up", "--instances", "2", "--sentinel", "--env-file", str(base),
                          "--first-port", "0")
    try:
        assert code == 0, out
        assert "etiquette-pool-2" in out
        code, out = await cli("status")
        assert code == 0, out
        status = json.loads(out)
        assert set(status) == set(APPS) and all(i["healthy"] for i in status.values()), status
        calls = [await callers.dial_local("100", context="etiquette-pool") for _ in range(2)]
        for ours, call_id in calls:
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackStarted"
                                    and e["playback"]["target_uri"] == f"channel:{c}",
                                    timeout=20, what="the caller greeted by the pool")
            await callers.hang_up(ours)
    finally:
        code, out = await cli("down")
    assert code == 0, out
    pids = [info["pid"] for info in status.values()]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for app in APPS:
        assert log_errors(directory / f"{app}.log") == []


async def test_given_caller_on_hold_when_their_instance_is_stopped_then_handed_over_at_once(
        settings, redis, ari, parties, app_runner, tmp_path):
    """SIGTERM (a service restart, a deploy): the stopping instance leaves its app name to the
    pool at once instead of letting the lease run out, and the survivor goes on with the
    caller's check-ins."""
    callers, phones, observer = parties
    _policy(settings)
    one, two = (_instance(settings, tmp_path, app) for app in APPS)
    try:
        await one.start()
        calls = await _callers_on_hold(callers, ari, observer, one, 1)
        await two.start()
        stopped_at = time.time()
        assert await one.stop() == 0
        _, call_id = calls[0]
        event = await observer.wait_for(
            lambda e: e.get("type") == "PlaybackStarted" and prompt_of(e).startswith("checkin")
            and e["playback"]["target_uri"] == f"channel:{call_id}" and e["_t"] > stopped_at,
            timeout=2 * INTERVAL + LEASE, what="a check-in by the survivor")
        late = await _lateness(redis, call_id, stopped_at)
        print(f"after SIGTERM: next check-in {event['_t'] - stopped_at:.1f} s later, "
              f"{[round(x, 2) for x in late]} s after it was due")
        assert late and max(late) <= 1.0, late  # on time: the handover cost no check-in
        assert "shard left to the pool" in one.log.read_text()
        await callers.hang_up(calls[0][0])
        await _until_forgotten(redis, [call_id])
    finally:
        await _stop_all(one, two)
    for instance in (one, two):
        assert instance.error_lines() == [], instance.error_lines()


async def test_given_second_process_with_the_same_app_name_when_started_then_it_waits(
        settings, redis, ari, parties, app_runner, tmp_path):
    """Never two processes on one app name: a second process configured with an app name a
    live instance holds does not open its WebSocket (Asterisk would hand it the first one's
    callers); it says whom it waits for, and takes the name once the first is gone."""
    callers, phones, observer = parties
    (tmp_path / "second").mkdir()
    first = _instance(settings, tmp_path, APPS[0])
    second = AppProcess(settings, tmp_path / "second", APPS[0], API_TOKEN,
                        ETIQUETTE_POOL_APPS=",".join(APPS), ETIQUETTE_POOL_LEASE=str(LEASE),
                        ETIQUETTE_INSTANCE_ID="test/the-other-one")
    try:
        await first.start()
        second_started = asyncio.create_task(second.start(timeout=60))
        deadline = time.monotonic() + 20
        while True:  # polling the second's /healthz until it answers, bounded
            try:
                async with aiohttp.ClientSession() as s:
                    async with s.get(second.base_url + "/healthz") as resp:
                        health = await resp.json()
                        break
            except aiohttp.ClientError:
                assert time.monotonic() < deadline, "the second process never answered"
                await asyncio.sleep(0.2)
        assert resp.status == 503, health
        assert health["pool"]["held"] == [] and \
            health["pool"]["waiting_for_home"] == f"test/{APPS[0]}", health
        ours, call_id = await callers.dial_local("100", context="etiquette-pool")
        await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                and e["playback"]["target_uri"] == f"channel:{call_id}",
                                timeout=20, what="the caller greeted by the first")
        assert "ApplicationReplaced" not in first.log.read_text()
        assert (await _claims(redis, call_id))[0]["instance"] == f"test/{APPS[0]}"
        await callers.hang_up(ours)
        await _until_forgotten(redis, [call_id])
        await first.stop()  # gone (cleanly): the second takes the name at once
        await second_started
    finally:
        await _stop_all(first, second)
    for instance in (first, second):
        assert instance.error_lines() == [], instance.error_lines()
