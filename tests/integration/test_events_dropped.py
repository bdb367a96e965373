"""The app's events WebSocket dropped with a hundred calls up (issue 14): the socket is cut
under the app as a network failure would (`ss -K`, the kernel aborts the connection), the app
reconnects and resyncs with what Asterisk has, no caller is stuck (each hears a check-in again
within one interval) and none hears a prompt twice.

Callers wait in a queue (check-ins every 6 s), the app runs as its own process.
`ETIQUETTE_CROWD=300` runs it at the issue's 300 callers (test_redis_restart.py's docstring)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from urllib.parse import urlparse

import pytest


from harness import AppProcess
from test_first_call import prompt_of
from test_redis_restart import CROWD, INTERVAL, POLICY, app_and_crowd, nothing_left

pytestmark = pytest.mark.integration


def cut_connections(pid: int, port: int) -> int:
    """Abort every TCP connection process `pid` holds to local `port` (ss -K, as root):
    what the app sees of a network failure. Returns how many were cut."""
    listed = subprocess.run(["ss", "-tnpH", "state", "established", "dport", "=", f":{port}"],
                            capture_output=True, text=True, check=True).stdout
    ports = [line.split()[2].rsplit(":", 1)[1] for line in listed.splitlines()
             if f"pid={pid}," in line]
    for local in ports:
        subprocess.run(["ss", "-K", "state", "established", "sport", "=", f":{local}",
                        "dport", "=", f":{port}"], capture_output=True, check=True)
    return len(ports)


def connects(app: AppProcess) -> list[dict]:
    """The app's "ari events connected" log lines."""
    lines = []
    for line in app.log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "ari events connected":
            lines.append(entry)
    return lines


@pytest.mark.timeout(300)
@pytest.mark.policy(POLICY)
async def test_given_hundred_callers_waiting_when_events_socket_cut_then_resynced_none_stuck_no_prompt_twice(
        settings, parties, ari, redis, tmp_path):
    callers, phones, observer = parties
    app, crowd = await app_and_crowd(settings, tmp_path, parties)
    try:
        await crowd.waiting(parties, ari)
        assert len(connects(app)) == 1

        cut = cut_connections(app.proc.pid, urlparse(settings.ari_url).port)
        at = time.time()
        assert cut >= 1, "the app held no connection to ARI"
        deadline = time.monotonic() + 15
        while len(connects(app)) < 2:
            assert time.monotonic() < deadline, "the app did not reconnect within 15 s"
            await asyncio.sleep(0.1)  # polling the app's log for the reconnect
        reconnected = time.time() - at

        # nobody stuck: every caller hears a check-in again within one interval of the cut
        heard = await crowd.all_heard("queue-checkin-", timeout=INTERVAL + 10, since=at)
        resumed = sorted(times[0] - at for times in heard.values())
        assert resumed[-1] <= INTERVAL + 3, f"a check-in {resumed[-1]:.1f} s after the cut"
        await crowd.all_heard("queue-checkin-", timeout=INTERVAL + 10, since=at + INTERVAL + 2)
        # nobody hears a check-in twice: each started once, a full interval after the last
        started = [e["playback"]["id"] for e in observer.of_type("PlaybackStarted")
                   if e["playback"]["id"].split("~", 1)[0] in crowd.legs
                   and prompt_of(e).startswith("queue-checkin-")]
        assert len(started) == len(set(started)), "a check-in started twice"
        starts = crowd.starts("queue-checkin-", since=at - INTERVAL)
        gaps = [b - a for times in starts.values() for a, b in zip(times, times[1:])]
        assert all(gap > INTERVAL - 1 for gap in gaps), sorted(gaps)[:5]
        print(f"events socket cut with {CROWD} callers: {cut} connection(s) cut, reconnected in "
              f"{reconnected:.1f} s; first check-in after the cut p50 "
              f"{resumed[len(resumed) // 2]:.1f} s, max {resumed[-1]:.1f} s")
    finally:
        code = await crowd.end(app, redis)
    await nothing_left(app, code, ari, redis)
