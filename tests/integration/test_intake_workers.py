"""`ari-etiquette intake`: the public callback form on processes of its own, sharing one port
(ari_app/web_intake.py), against the sandbox's Redis. Both processes take forms, every 201 is
in Redis, the page's own CSRF flow works on any of them, nothing of call control is on that
port, SIGTERM stops them all cleanly, and Redis away at start is an exit naming it."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from ari_app.sandbox.ports import free_port
from ari_app.storage import Keyspace
from conftest import API_TOKEN
from harness import AppProcess

KEYS = Keyspace()

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def fresh(method: str, url: str, **kwargs) -> tuple[int, dict]:
    """One request on a connection of its own: the kernel picks the process for it."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                     timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.request(method, url, **kwargs) as r:
            return r.status, await r.json(content_type=None)


@pytest.mark.policy("[callback]\nallowed_countries = [\"US\"]\n")
async def test_given_two_intake_processes_when_forms_posted_then_both_take_them_and_all_stored(
        settings, redis, tmp_path):
    intake = await AppProcess(settings, tmp_path, "intake", API_TOKEN,
                              command=("intake", "--workers", "2")).start()
    try:
        health = await asyncio.gather(*(fresh("GET", f"{intake.base_url}/healthz")
                                        for _ in range(30)))
        assert {status for status, _ in health} == {200}
        assert len({body["pid"] for _, body in health}) == 2, "both processes answer"

        answers = await asyncio.gather(*(fresh(
            "POST", f"{intake.base_url}/api/callbacks", headers=AUTH,
            json={"number": f"+1212555{i:04d}", "name": "Ann Lee"}) for i in range(40)))
        assert [status for status, _ in answers] == [201] * 40
        ids = [body["id"] for _, body in answers]
        assert None not in await redis.zmscore(KEYS.record_index("callback"), ids)
        assert await redis.exists(*(KEYS.record("callback", i) for i in ids)) == 40

        # the page's flow: its cookie and token, the form posted on another connection
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as page:
            async with page.get(f"{intake.base_url}/callback") as r:
                html = await r.text()
            token = html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            async with page.post(f"{intake.base_url}/api/callbacks",
                                 json={"number": "+12125559999"},
                                 headers={"X-CSRF-Token": token}) as r:
                assert r.status == 201
                made = await r.json()
        status, followed = await fresh("GET", f"{intake.base_url}/api/callbacks/{made['id']}")
        assert (status, followed["status"], followed["number"]) == (200, "pending", "+12125559999")

        # nothing of call control or the customers' cards on the public port
        for path in ("/api/calls", "/api/customers/12125559999", "/dashboard"):
            status, body = await fresh("GET", f"{intake.base_url}{path}", headers=AUTH)
            assert (status, body["error_id"]) == (404, "no-such-route"), path
    finally:
        code = await intake.stop()
    assert code == 0
    assert intake.error_lines() == []


async def test_given_redis_away_when_intake_starts_then_it_exits_naming_redis(settings, tmp_path):
    intake = AppProcess(settings, tmp_path, "intake", API_TOKEN,
                        command=("intake", "--workers", "2"),
                        ETIQUETTE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                        ETIQUETTE_REDIS_TIMEOUT="0.5")
    with pytest.raises(AssertionError, match="did not come up"):
        await intake.start(timeout=20)
    assert intake.proc.returncode == 1
    logged = [json.loads(line) for line in intake.log.read_text().splitlines()
              if line.startswith("{")]
    assert sum("Redis not reachable" in e.get("error", "") for e in logged) == 2  # one a process
