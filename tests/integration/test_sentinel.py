"""Redis Sentinel, with real processes: the app on the master a group of three sentinels
names (a master and two replicas on loopback, ari_app/sandbox/sentinel.py). A server keeps
posting callback requests while the master is killed with SIGKILL: the API answers 503
`storage-unavailable` while no master is known, takes requests again by itself once a replica
is promoted, and every request it acknowledged before, during and after is there."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from ari_app.doctor import run_doctor
from ari_app.sandbox.sentinel import MASTER_NAME, SentinelGroup

from conftest import API_TOKEN
from harness import AppProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_given_sentinel_group_when_master_killed_then_503_meanwhile_and_nothing_acknowledged_lost(
        settings, tmp_path):
    group = await asyncio.to_thread(SentinelGroup(tmp_path / "sentinel").up)
    app = AppProcess(settings, tmp_path, "etiquette-sentinel", API_TOKEN,
                     ETIQUETTE_REDIS_URL=group.url, ETIQUETTE_REDIS_SENTINELS=group.sentinels,
                     ETIQUETTE_REDIS_MASTER=MASTER_NAME, ETIQUETTE_CALLBACK_DIALER="false")
    answers: list[tuple[float, int, dict]] = []  # (sent at, status, body)
    try:
        on_group = settings.model_copy(update={"redis_url": group.url,
                                               "redis_sentinels": group.sentinels})
        [redis] = [c for c in await run_doctor(on_group) if c.name == "Redis"]
        assert redis.ok and "2 replica(s) connected" in redis.detail, redis.line()
        assert "the master 'etiquette' of the sentinels at 127.0.0.1:" in redis.detail
        [redis] = [c for c in await run_doctor(on_group.model_copy(
            update={"redis_master": "nobody"})) if c.name == "Redis"]
        assert not redis.ok and "no master named 'nobody'" in redis.detail, redis.line()

        await app.start()
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def post(n: int) -> None:
                body = {"number": f"+1212555{n:04d}", "name": f"Customer {n}",
                        "topic": "failover", "time_zone": "America/New_York"}
                sent = time.time()
                async with http.post(f"{app.base_url}/api/callbacks", json=body) as r:
                    answers.append((sent, r.status, await r.json()))

            for n in range(10):  # accepted before the kill
                await post(1000 + n)
            assert [s for _, s, _ in answers] == [201] * 10, answers
            old = group.master_port()
            group.kill(old)
            killed = time.time()
            n = 1010
            while time.time() - killed < 40:  # a server retrying through the failover
                await post(n)
                n += 1
                after = [s for t, s, _ in answers if t > killed]
                if 503 in after and after[-3:] == [201] * 3:
                    break
                await asyncio.sleep(0.05)  # the server's own pace between posts
            new = await asyncio.to_thread(group.wait_failover, old)
            assert new != old

            after = [(s, b) for t, s, b in answers if t > killed]
            assert {s for s, _ in after} <= {201, 503}, after
            refused = [b for s, b in after if s == 503]
            assert refused, "no 503 while no master was known"
            assert all(b["error_id"] == "storage-unavailable" for b in refused), refused[:3]
            assert [s for s, _ in after[-3:]] == [201] * 3, "the app did not recover by itself"

            back = next(t for t, s, _ in answers if t > killed and s == 201) - killed
            print(f"failover: {len(refused)} answered 503, requests taken again {back:.1f} s "
                  f"after the kill, {len(answers)} posted")
            # every acknowledged request is on the new master
            acknowledged = [b["id"] for _, s, b in answers if s == 201]
            for request_id in acknowledged:
                async with http.get(f"{app.base_url}/api/callbacks/{request_id}") as r:
                    assert r.status == 200, (request_id, await r.text())
    finally:
        code = await app.stop()
        await asyncio.to_thread(group.down)
    assert code == 0, app.log.read_text()[-3000:]
    assert app.error_lines() == [], app.error_lines()
