"""No input gets a 5xx or a non-JSON error (issue 9, sections 4, 5 and 6), against the real app
with the sandbox's Redis and Asterisk: malformed JSON, bodies and headers, wrong types in every
route's fields, unknown routes and methods, malformed ids; a stalled body is cut off; a
server's (bearer) rate limit is its own; a paused Redis is a JSON 503.

Malformed bytes go over a raw socket (aiohttp's client refuses to send them)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from conftest import API_TOKEN
from test_callback import callback_policy, page_session, post_form

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CALL = "1700000000.42"  # no such live call: bodies are checked before the call is looked up
VOICEMAIL = "0" * 32    # well-formed, unknown


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    body: bytes | None = None
    status: int = 422
    error_id: str = "invalid-request"
    headers: dict = field(default_factory=dict)
    auth: bool = True
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} {(self.body or b'')[:40]!r} -> {self.status}"


def js(value) -> bytes:
    return json.dumps(value).encode()


DEEP = b"[" * 20000 + b"]" * 20000
BAD_INPUTS = [
    # JSON that cannot be parsed
    Bad("POST", f"/api/calls/{CALL}/hold", DEEP, 400, "invalid-json"),
    Bad("POST", "/api/callbacks", b'{"number":' * 3000 + b"1" + b"}" * 3000, 400, "invalid-json"),
    Bad("POST", "/api/callbacks", js({"number": "+12125550100"}), 400, "invalid-json",
        {"Content-Type": "application/json; charset=nope"}),
    Bad("POST", f"/api/calls/{CALL}/transfer", b'{"target": "\xff\xfe"}', 400, "invalid-json",
        {"Content-Type": "application/json"}),
    Bad("POST", f"/api/calls/{CALL}/hold", b"{reason: lookup}", 400, "invalid-json"),
    Bad("POST", f"/api/calls/{CALL}/hold", b'{"expected_minutes": NaN}', 400, "invalid-json"),
    Bad("POST", "/api/callbacks", b"x" * (100 * 1024), 413, "request-too-large"),
    # JSON, but not an object
    Bad("POST", f"/api/calls/{CALL}/hold", b"[1, 2]"),
    Bad("POST", "/api/callbacks", b'"+12125550100"'),
    # a field of the wrong type, in every route that reads a body
    Bad("POST", f"/api/calls/{CALL}/hold", js({"reason": ["lookup"]}), field="reason"),
    Bad("POST", f"/api/calls/{CALL}/hold", js({"reason": {"a": 1}}), field="reason"),
    Bad("POST", f"/api/calls/{CALL}/hold", js({"reason": "no-such-reason"}), field="reason"),
    Bad("POST", f"/api/calls/{CALL}/hold", js({"expected_minutes": "2"}),
        field="expected_minutes"),
    Bad("POST", f"/api/calls/{CALL}/hold", js({"expected_minutes": True}),
        field="expected_minutes"),
    Bad("POST", f"/api/calls/{CALL}/hold", js({"expected_minutes": 2.5}),
        field="expected_minutes"),
    Bad("POST", f"/api/calls/{CALL}/transfer", js({"target": "billing", "reason": ["lookup"]}),
        field="reason"),
    Bad("POST", f"/api/calls/{CALL}/transfer", js({"target": ["billing"]}), field="target"),
    Bad("POST", f"/api/calls/{CALL}/transfer", js({"target": 21}), field="target"),
    Bad("POST", f"/api/calls/{CALL}/transfer", js({"target": "billing", "mode": 1}),
        field="mode"),
    Bad("POST", f"/api/calls/{CALL}/transfer", js({"target": "billing", "mode": ["attended"]}),
        field="mode"),
    Bad("POST", "/api/callbacks", js({"number": 12125550100}), field="number"),
    Bad("POST", "/api/callbacks", js({"number": "+12125550100", "name": ["Ann"]}), field="name"),
    Bad("POST", "/api/callbacks", js({"number": "+12125550100", "topic": 0}), field="topic"),
    Bad("POST", "/api/callbacks", js({"number": "+12125550100", "time_zone": {"a": 1}}),
        field="time_zone"),
    Bad("POST", "/api/callbacks", js({"number": "+12125550100", "language": ["en"]}),
        field="language"),
    Bad("POST", "/api/callbacks", js({"number": "+12125550100", "preferred_time": 1}),
        field="preferred_time"),
    # query parameters
    Bad("GET", "/api/voicemails?heard=maybe", field="heard"),
    Bad("GET", "/api/voicemails?for=" + "x" * 500, field="for"),
    # malformed ids: the same 404 as an unknown id, whatever Redis holds
    Bad("GET", "/api/callbacks/open:+12125550105", status=404,
        error_id="no-such-callback-request", auth=False),
    Bad("GET", "/api/callbacks/pending", status=404, error_id="no-such-callback-request",
        auth=False),
    Bad("GET", "/api/callbacks/" + "a" * 32, status=404, error_id="no-such-callback-request",
        auth=False),
    Bad("GET", "/api/customers/open:+12125550105", status=404, error_id="no-such-customer"),
    Bad("GET", "/api/customers/+12125550100:history", status=404, error_id="no-such-customer"),
    Bad("GET", "/api/voicemails/index", status=404, error_id="no-such-voicemail"),
    Bad("GET", f"/api/voicemails/{VOICEMAIL}", status=404, error_id="no-such-voicemail"),
    Bad("GET", f"/api/voicemails/{VOICEMAIL}/audio", status=404, error_id="no-such-voicemail"),
    Bad("POST", f"/api/voicemails/{VOICEMAIL}/heard", status=404, error_id="no-such-voicemail"),
    Bad("DELETE", f"/api/voicemails/{VOICEMAIL}", status=404, error_id="no-such-voicemail"),
    Bad("POST", f"/api/calls/{'x' * 300}/escalate", status=404, error_id="no-such-call"),
    Bad("POST", f"/api/calls/{CALL}/transfer/complete", status=404, error_id="no-such-call"),
    Bad("DELETE", f"/api/calls/{CALL}/transfer", status=404, error_id="no-such-call"),
    Bad("POST", f"/api/calls/{CALL}/escalate", status=404, error_id="no-such-call"),
    Bad("DELETE", f"/api/calls/{CALL}/hold", status=404, error_id="no-such-call"),
    Bad("POST", f"/api/calls/{CALL}/warn", status=404, error_id="no-such-call"),
    Bad("POST", f"/api/calls/{'x' * 300}/warn", status=404, error_id="no-such-call"),
    # unknown routes and methods
    Bad("GET", "/api/no-such-thing", status=404, error_id="no-such-route"),
    Bad("GET", "/no-such-page", status=404, error_id="no-such-route", auth=False),
    Bad("PUT", f"/api/calls/{CALL}/hold", status=405, error_id="method-not-allowed"),
    Bad("DELETE", "/api/callbacks", status=405, error_id="method-not-allowed"),
    # the API without (or with a wrong) token
    Bad("GET", "/api/calls", status=401, error_id="unauthorized", auth=False),
]


async def send(base_url: str, bad: Bad) -> tuple[int, dict, aiohttp.ClientResponse]:
    headers = {**(AUTH if bad.auth else {}), **bad.headers}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        async with session.request(bad.method, base_url + bad.path, data=bad.body,
                                   headers=headers, skip_auto_headers=["Content-Type"]) as resp:
            assert resp.content_type == "application/json", (bad, resp.status, await resp.text())
            return resp.status, await resp.json(), resp


@pytest.mark.policy('[callback]\nallowed_countries = ["US"]\n')
async def test_given_bad_inputs_when_sent_then_each_answers_its_4xx_as_json(app, app_runner):
    async with aiohttp.ClientSession() as session:  # pages stay pages
        async with session.get(app_runner.base_url + "/callback") as resp:
            assert (resp.status, resp.content_type) == (200, "text/html")
    wrong = []
    for bad in BAD_INPUTS:
        status, body, resp = await send(app_runner.base_url, bad)
        ok = (status, body.get("error_id")) == (bad.status, bad.error_id) and body.get("message")
        if bad.field is not None:
            ok = ok and body.get("field") == bad.field
        if bad.status == 405:
            ok = ok and resp.headers.get("Allow")
        if not ok:
            wrong.append(f"{bad}: got {status} {body}")
    assert not wrong, "\n".join(wrong)


async def raw(base_url: str, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """One request written byte for byte on a socket; its answer (status, JSON body)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.replace(b"\n", b"\r\n") + b"\r\n" + body)
        await writer.drain()
        return await asyncio.wait_for(read_answer(reader), timeout=10)
    finally:
        writer.close()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    assert "content-type: application/json" in head.lower(), head
    length = next(int(line.split(":", 1)[1]) for line in head.split("\r\n")
                  if line.lower().startswith("content-length:"))
    return int(head.split()[1]), json.loads(await reader.readexactly(length))


@pytest.mark.parametrize("path", ["/api/calls", f"/api/calls/{CALL}/hold", "/api/voicemails",
                                  "/api/customers/+12125550100", "/api/no-such-thing"])
async def test_given_non_ascii_bearer_bytes_when_any_route_then_401_json(app, app_runner, path):
    status, body = await raw(app_runner.base_url,
                             f"GET {path} HTTP/1.1\nHost: x\n".encode()
                             + b"Authorization: Bearer \xff\xfe\xc3\xa9\nConnection: close\n")
    assert (status, body["error_id"]) == (401, "unauthorized")


async def test_given_non_ascii_csrf_token_when_form_posted_then_403_json(app, app_runner):
    body = js({"number": "+12125550100"})
    for token in (b"\xff\xfe", "é".encode()):
        status, answer = await raw(app_runner.base_url, (
            b"POST /api/callbacks HTTP/1.1\nHost: x\nCookie: etq_csrf=abc\n"
            b"X-CSRF-Token: " + token + b"\nContent-Type: application/json\n"
            b"Content-Length: " + str(len(body)).encode() + b"\nConnection: close\n"), body)
        assert (status, answer["error_id"]) == (403, "csrf-token-missing-or-wrong")


async def test_given_stalled_body_when_posted_then_cut_off_within_seconds(app, app_runner):
    started = time.monotonic()
    host, port = app_runner.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"POST /api/callbacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     + API_TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b'{"number":')  # 10 of 1000 bytes
        await writer.drain()
        status, body = await asyncio.wait_for(read_answer(reader), timeout=10)
    finally:
        writer.close()
    assert (status, body["error_id"]) == (408, "request-timeout")
    assert time.monotonic() - started < 8


async def test_given_browser_limit_used_up_when_server_posts_then_server_limit_is_its_own(
        app_runner, settings):
    callback_policy(settings, extra='allowed_countries = ["US"]\nrequests_per_ip_per_hour = 2\n'
                                    "requests_per_server_per_hour = 4\n")
    await app_runner.start()
    session, token = await page_session(app_runner.base_url)
    try:
        for i in range(2):
            status, body = await post_form(session, app_runner.base_url, token,
                                           {"number": f"+1212555010{i}"})
            assert status == 201, body
        status, body = await post_form(session, app_runner.base_url, token,
                                       {"number": "+12125550109"})
        assert (status, body["error_id"]) == (429, "too-many-requests")
    finally:
        await session.close()

    for i in range(2, 6):  # same address, bearer token: its own 4 an hour
        status, body = await app_runner.api("POST", "/api/callbacks",
                                            {"number": f"+1212555010{i}"})
        assert status == 201, body
    status, body = await app_runner.api("POST", "/api/callbacks", {"number": "+12125550108"})
    assert (status, body["error_id"]) == (429, "too-many-requests")


async def test_given_open_request_for_a_number_when_status_by_that_key_then_same_404(
        app_runner, settings):
    callback_policy(settings, extra='allowed_countries = ["US"]\n')
    await app_runner.start()
    status, created = await app_runner.api("POST", "/api/callbacks", {"number": "+12125550105"})
    assert status == 201, created
    for path in ("/api/callbacks/open:+12125550105", "/api/callbacks/open:%2B12125550105",
                 f"/api/callbacks/{created['id']}x", f"/api/callbacks/{created['id'].upper()}"):
        status, body = await app_runner.api("GET", path, token=None)
        assert (status, body["error_id"]) == (404, "no-such-callback-request"), path
    status, body = await app_runner.api("GET", f"/api/callbacks/{created['id']}", token=None)
    assert status == 200 and body["number"] == "+12125550105"


async def test_given_redis_not_taking_writes_when_api_called_then_json_503_then_retry_works(
        app_runner, settings, redis):
    callback_policy(settings, extra='allowed_countries = ["US"]\n')
    await app_runner.start()
    await redis.execute_command("CLIENT", "PAUSE", "10000", "WRITE")  # writes hang, as when
    try:                                                               # Redis is stopped
        started = time.monotonic()
        status, body = await app_runner.api("POST", "/api/callbacks", {"number": "+12125550106"})
        assert (status, body["error_id"]) == (503, "storage-unavailable"), body
        assert body["message"] == ("storage (Redis) not reachable; nothing was changed, "
                                   "please retry")
        assert time.monotonic() - started < 5
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
    status, body = await app_runner.api("POST", "/api/callbacks", {"number": "+12125550106"})
    assert (status, body["merged"]) == (201, False), body
