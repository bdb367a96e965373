"""Redis restarted with a hundred calls up (issue 14): callers waiting in a queue keep their
music and get their check-ins again, the API answers a clear 503 meanwhile, and every callback
request acknowledged before, during or after the restart is still in Redis.

The app runs as its own process (`ari-etiquette run`), Redis is the sandbox's (append-only,
`appendfsync everysec`) and is restarted as a service manager does it (SIGTERM: it flushes its
append-only file, then starts again on the same port). Check-ins are every 6 s; the shipped
25 s are in test_queue_defaults.py. `ETIQUETTE_CROWD=300 scripts/test tests/integration/
test_redis_restart.py tests/integration/test_events_dropped.py -s` runs both at 300 callers."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest

from ari_app.storage import Keyspace

from conftest import API_TOKEN
from harness import (DEAD_AIR_WINDOWS, AppProcess, assert_music, longest_silence,
                     record_heard_since)
from test_first_call import prompt_of
from test_queue import QUEUE, busy_operator

pytestmark = pytest.mark.integration
KEYS = Keyspace()
CROWD = int(os.environ.get("ETIQUETTE_CROWD", "100"))  # ETIQUETTE_CROWD=300: the load
INTERVAL = 6
POLICY = QUEUE.replace("check_in_interval = 3", f"check_in_interval = {INTERVAL}").replace(
    "threshold = 40", "threshold = 180").replace("max_wait = 80", "max_wait = 600\nmax_waiting = 1000") + (
    "\n[recording]\nenabled = false\n")
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


class Crowd:
    """Callers dialed in over Local channels, and what the observer heard start for each."""

    def __init__(self, callers, observer) -> None:
        self.callers, self.observer = callers, observer
        self.legs: dict[str, str] = {}  # call id -> our leg
        self.first: tuple[str, str] | None = None  # operator1's caller: (our leg, call id)

    async def waiting(self, parties, ari) -> tuple[str, str]:
        """operator1 talking with a first caller, then CROWD callers in the queue, each past
        their first check-in; the first caller's (leg, call id)."""
        self.first = await busy_operator(parties, ari)
        await self.dial(CROWD, first_number=200)
        await self.all_heard("queue-entered", timeout=60)
        await self.all_heard("queue-checkin-", timeout=INTERVAL + 30)
        return self.first

    async def dial(self, count: int, first_number: int, rate: float = 20.0) -> None:
        """`count` callers, paced at `rate` a second as independent callers arrive."""
        async def one(n: int) -> None:
            ours, call_id = await self.callers.dial_local("100", number=f"+1212555{n:04d}",
                                                          name=f"Caller {n}")
            self.legs[call_id] = ours
        tasks = []
        for n in range(count):
            tasks.append(asyncio.create_task(one(first_number + n)))
            await asyncio.sleep(1 / rate)  # the arrival pace
        await asyncio.gather(*tasks)

    def starts(self, prefix: str, since: float = 0.0) -> dict[str, list[float]]:
        """Per caller, when each prompt starting with `prefix` started (observer's clock)."""
        heard: dict[str, list[float]] = {c: [] for c in self.legs}
        for e in self.observer.of_type("PlaybackStarted"):
            call_id = e["playback"]["id"].split("~", 1)[0]
            if call_id in heard and e["_t"] >= since and prompt_of(e).startswith(prefix):
                heard[call_id].append(e["_t"])
        return heard

    async def all_heard(self, prefix: str, timeout: float, since: float = 0.0) -> dict:
        """Wait until every caller has heard a `prefix` prompt started since `since`."""
        deadline = time.monotonic() + timeout
        while True:
            heard = self.starts(prefix, since)
            missing = [c for c, at in heard.items() if not at]
            if not missing:
                return heard
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(missing)} of {len(heard)} callers heard no {prefix} "
                                     f"within {timeout} s, e.g. {missing[:3]}")
            self.observer._changed.clear()
            try:  # woken by the observer's next event
                await asyncio.wait_for(self.observer._changed.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async def end(self, app: AppProcess, redis) -> int | None:
        """Every caller hangs up, the app closes every call, then stops: its exit code
        (checked by `nothing_left`, after any failure of the test itself)."""
        legs = [*self.legs.values(), *([self.first[0]] if self.first else [])]
        await asyncio.gather(*(self.callers.hang_up(leg) for leg in legs))
        deadline = time.monotonic() + 30
        while await redis.exists(KEYS.live_calls()) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # polling until the app has closed every call
        return await app.stop()


async def app_and_crowd(settings, tmp_path, parties) -> tuple[AppProcess, Crowd]:
    """The app as its own process (the dialer off: nothing posted is dialed), and a crowd of
    callers still to dial in."""
    app = await AppProcess(settings, tmp_path, settings.ari_app, API_TOKEN,
                           ETIQUETTE_CALLBACK_DIALER="false").start()
    return app, Crowd(parties[0], parties[2])


async def nothing_left(app: AppProcess, code: int | None, ari, redis) -> None:
    """The app exited cleanly with no error logged; nothing left in Asterisk or of the calls
    and the queue in Redis."""
    assert code == 0, app.log.read_text()[-3000:]
    assert app.error_lines() == [], app.error_lines()[:5]
    deadline = time.monotonic() + 20
    while await ari.channels() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # polling until Asterisk has hung every leg up
    assert not await ari.channels() and not await ari.bridges()
    assert not await redis.exists(KEYS.live_calls(), KEYS.queue_line("sales"),
                                  KEYS.queue_offers())


class Poster:
    """A server posting callback requests at its own pace, whatever the answers."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.answers: list[tuple[float, int, dict]] = []  # (sent at, status, body)
        self.running = True

    async def run(self, first_number: int) -> None:
        n = first_number
        async with aiohttp.ClientSession(headers=AUTH,
                                         timeout=aiohttp.ClientTimeout(total=10)) as http:
            while self.running:
                body = {"number": f"+1212555{n:04d}", "name": f"Customer {n}",
                        "topic": "redis restart", "time_zone": "America/New_York"}
                sent = time.time()
                async with http.post(f"{self.base_url}/api/callbacks", json=body) as r:
                    self.answers.append((sent, r.status, await r.json(content_type=None)))
                n += 1
                await asyncio.sleep(0.05)  # the server's own pace between posts

    def statuses(self, since: float, until: float = float("inf")) -> list[int]:
        return [s for t, s, _ in self.answers if since <= t < until]

    async def until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what} not within {timeout} s"
            await asyncio.sleep(0.1)  # polling the poster's answers


@pytest.mark.timeout(300)
@pytest.mark.policy(POLICY)
async def test_given_hundred_callers_waiting_when_redis_restarts_then_check_ins_resume_and_nothing_acknowledged_lost(
        settings, sandbox, parties, ari, redis, tmp_path, spool):
    instance, _ = sandbox
    callers, phones, observer = parties
    app, crowd = await app_and_crowd(settings, tmp_path, parties)
    poster = Poster(app.base_url)
    posting = None
    try:
        await crowd.waiting(parties, ari)
        posting = asyncio.create_task(poster.run(first_number=5000))
        await poster.until(lambda: poster.statuses(0).count(201) >= 10, 20, "10 requests taken")

        instance.stop_redis(graceful=True)
        down = time.time()
        await poster.until(lambda: 503 in poster.statuses(down), 10, "a 503 while Redis is down")
        # no dead air while Redis is away, heard on the callers most at risk: those whose
        # check-in was playing when it went (the music after a prompt is the machine's step,
        # which waits for storage; the executor puts the music back meanwhile)
        latest = crowd.starts("queue-checkin-", since=down - INTERVAL)
        at_risk = sorted((c for c in latest if latest[c]), key=lambda c: -latest[c][-1])[:3]
        heard = await asyncio.gather(*(record_heard_since(callers, crowd.legs[c], 8, spool)
                                       for c in at_risk))
        for call_id, (levels, _) in zip(at_risk, heard):
            silent = longest_silence(levels)
            assert silent <= DEAD_AIR_WINDOWS, f"{call_id}: {silent * 100} ms of dead air {levels}"
            assert_music(levels[-30:], f"{call_id} waiting while Redis restarts")
        up = {c["id"] for c in await ari.channels()}
        assert set(crowd.legs) <= up and set(crowd.legs.values()) <= up, "a caller was dropped"
        instance.start_redis()
        back = time.time()

        # every caller hears a check-in again within one interval of Redis being back (those
        # due during the outage at once, late instead of never)
        heard = await crowd.all_heard("queue-checkin-", timeout=INTERVAL + 10, since=back)
        resumed = sorted(at[0] - back for at in heard.values())
        assert resumed[-1] <= INTERVAL + 3, f"a check-in {resumed[-1]:.1f} s after Redis was back"
        await poster.until(lambda: poster.statuses(back)[-3:] == [201] * 3, 20,
                           "requests taken again after the restart")
        poster.running = False
        await posting

        during = poster.statuses(down, back)
        assert set(poster.statuses(0)) <= {201, 503}, poster.answers[-5:]
        refused = [b for t, s, b in poster.answers if s == 503]
        assert refused and all(b["error_id"] == "storage-unavailable" and b["message"]
                               for b in refused), refused[:3]
        # every acknowledged request is in Redis: its record and its place in the pending index
        acknowledged = [b["id"] for _, s, b in poster.answers if s == 201]
        async with aiohttp.ClientSession(headers=AUTH) as http:
            for request_id in acknowledged:
                async with http.get(f"{app.base_url}/api/callbacks/{request_id}") as r:
                    body = await r.json()
                    assert (r.status, body.get("status")) == (200, "pending"), (request_id, body)
        # no caller heard a check-in twice: start to start never shorter than the interval
        await asyncio.sleep(0)
        starts = crowd.starts("queue-checkin-", since=back)
        gaps = [b - a for at in starts.values() for a, b in zip(at, at[1:])]
        assert all(gap > INTERVAL - 1 for gap in gaps), sorted(gaps)[:5]
        print(f"redis restart with {CROWD} callers: down {back - down:.1f} s, "
              f"{len(during)} posts meanwhile ({during.count(503)} answered 503), "
              f"{len(acknowledged)} acknowledged, all kept; first check-in after Redis was back "
              f"p50 {resumed[len(resumed) // 2]:.1f} s, max {resumed[-1]:.1f} s")
    finally:
        instance.start_redis()  # already up unless the test failed while it was away
        poster.running = False
        if posting is not None:
            await asyncio.gather(posting, return_exceptions=True)
        code = await crowd.end(app, redis)
    await nothing_left(app, code, ari, redis)
